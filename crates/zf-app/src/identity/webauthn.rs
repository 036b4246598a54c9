//! Security keys and passkeys (WebAuthn): registering and managing them, and using one as the
//! second factor at sign-in, for step-up, or alone (a passkey that verified its user) in place
//! of password and second factor.
//!
//! Every ceremony is a row taken once: begun on a session (or, for a passwordless sign-in, on
//! none), finished only on the same one, within five minutes. A key's counter and flags move by
//! compare-and-set in the transaction that accepts its assertion, so one assertion counts once
//! and a counter that goes backwards is refused (and audited as a possible clone).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_crypto::webauthn::{
    transports_of, Asserted, CredentialKind, RelyingParty, StoredCredential, UserHandle,
    WebauthnError,
};
use zf_domain::Username;
use zf_policy::{Authentication, Denied, Grant, Principal};
use zf_store::{
    CeremonyPurpose, CeremonyRow, CredentialAdd, CredentialRow, FactorUse, KeyUse, PasskeySignIn,
    SessionRow, StoreError, UserRow,
};

use super::mfa::{factor_name, session_actor};
use super::session::{session_ref, SessionToken, LOCKED};
use crate::{actor, App, AppError, LoginOutcome, RequestMeta, SessionContext};

/// How long a ceremony waits for its answer: the library's own timeout, and ours in the store.
const CEREMONY_MS: i64 = 5 * 60_000;

/// The relying party, from `[webauthn]`: the domain keys are bound to, and the exact origins
/// (scheme, host, port) pages that use them are served from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebauthnConfig {
    pub rp_id: String,
    pub origins: Vec<String>,
    /// What an authenticator shows the user the key is for.
    pub rp_name: String,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        WebauthnConfig::for_port(8443)
    }
}

impl WebauthnConfig {
    /// The default for a server reached as `https://localhost:<port>`. Browsers accept no IP
    /// address as an RP ID, so a server reached by address needs `[webauthn] rp_id`.
    pub fn for_port(port: u16) -> Self {
        WebauthnConfig {
            rp_id: "localhost".into(),
            origins: vec![format!("https://localhost:{port}")],
            rp_name: "Zhangfang".into(),
        }
    }

    pub fn relying_party(&self) -> Result<RelyingParty, WebauthnError> {
        RelyingParty::new(&self.rp_id, self.origins.clone(), &self.rp_name)
    }
}

/// What kind of key to register, as a caller names it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A discoverable credential that verifies its user: it alone signs in.
    Passkey,
    /// A key that proves presence: a second factor after the password.
    SecurityKey,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Passkey => "passkey",
            KeyKind::SecurityKey => "security_key",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "passkey" => Some(KeyKind::Passkey),
            "security_key" => Some(KeyKind::SecurityKey),
            _ => None,
        }
    }

    fn credential_kind(self) -> CredentialKind {
        match self {
            KeyKind::Passkey => CredentialKind::Passkey,
            KeyKind::SecurityKey => CredentialKind::SecurityKey,
        }
    }
}

/// A key's name as its user gave it: 1 to 64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let t = text.trim();
        if t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control) {
            return Err(AppError::Invalid(
                "name the key with 1 to 64 characters, without control characters".into(),
            ));
        }
        Ok(KeyName(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A credential id as it travels: base64url without padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyId(Vec<u8>);

impl KeyId {
    pub fn parse(text: &str) -> Result<Self, AppError> {
        match URL_SAFE_NO_PAD.decode(text) {
            Ok(bytes) if !bytes.is_empty() && bytes.len() <= 1023 => Ok(KeyId(bytes)),
            _ => Err(AppError::Invalid(
                "a security key id is the base64url of its credential id".into(),
            )),
        }
    }

    fn text(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// A registered security key or passkey, as its user or a security administrator sees it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SecurityKeyView {
    /// The credential id, base64url.
    pub id: String,
    pub name: String,
    /// `passkey` or `security_key`.
    pub kind: String,
    pub transports: Vec<&'static str>,
    /// The key verified its user (PIN, fingerprint) when it was registered or last used.
    pub user_verified: bool,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&CredentialRow> for SecurityKeyView {
    fn from(c: &CredentialRow) -> Self {
        SecurityKeyView {
            id: KeyId::text(&c.credential_id),
            name: c.name.clone(),
            kind: c.kind.clone(),
            transports: transports_of(u8::try_from(c.transports).unwrap_or(0)),
            user_verified: c.user_verified,
            sign_count: c.sign_count,
            created_at: c.created_at_ms,
            last_used_at: c.last_used_at_ms,
        }
    }
}

fn stored(c: &CredentialRow) -> Result<StoredCredential, AppError> {
    Ok(StoredCredential {
        id: c.credential_id.clone(),
        user_handle: UserHandle::from_bytes(&c.user_handle).map_err(internal)?,
        public_key: c.public_key.clone(),
        state: <[u8; 7]>::try_from(c.state.as_slice())
            .map_err(|_| AppError::Internal("webauthn_credentials.state is unreadable".into()))?,
        transports: u8::try_from(c.transports).unwrap_or(0),
    })
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// A caller's malformed answer is their mistake (400-class); anything else about the ceremony
/// is ours.
fn malformed(e: WebauthnError) -> AppError {
    match e {
        WebauthnError::Malformed(m) => {
            AppError::Invalid(format!("the security key's answer is malformed: {m}"))
        }
        other => internal(other),
    }
}

fn ceremony_gone() -> AppError {
    AppError::Invalid(
        "no such security-key request is waiting on this session: it expired, was answered already, or was begun elsewhere; start again".into(),
    )
}

/// The refusal for a factor change on a session whose factor is not fresh.
fn require_fresh(session: &SessionContext, operation: &'static str) -> Result<(), AppError> {
    let p = &session.principal;
    if p.authentication == (Authentication::MultiFactor { fresh: false }) {
        return Err(Denied::StepUpRequired {
            operation,
            enrolled: true,
            factors: p.factors,
        }
        .into());
    }
    Ok(())
}

/// Why an assertion was refused, for the audit log, and whether it points at a cloned key.
fn refusal(e: &WebauthnError) -> (String, bool) {
    match e {
        WebauthnError::CounterRegression => (e.to_string(), true),
        other => (other.to_string(), false),
    }
}

/// Passkey sign-ins one source address may begin per minute on one server. Beginning one needs
/// no account and writes a row, so without a limit an anonymous caller could fill the
/// ceremonies table; a person signing in needs one or two.
const PASSKEY_BEGINS_PER_MINUTE: u32 = 30;

impl App {
    /// One's own security keys and passkeys.
    pub async fn security_keys(
        &self,
        session: &SessionContext,
    ) -> Result<Vec<SecurityKeyView>, AppError> {
        let rows = self.store.credentials_of(session.principal.user_id).await?;
        Ok(rows.iter().map(SecurityKeyView::from).collect())
    }

    async fn user_named(&self, username: &str) -> Result<UserRow, AppError> {
        let name = Username::parse(username).map_err(|e| AppError::Invalid(e.to_string()))?;
        self.store
            .user_by_username(&name)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// A user's security keys, for a security administrator.
    pub async fn user_security_keys(
        &self,
        _grant: &Grant,
        username: &str,
    ) -> Result<Vec<SecurityKeyView>, AppError> {
        let user = self.user_named(username).await?;
        let rows = self.store.credentials_of(user.id).await?;
        Ok(rows.iter().map(SecurityKeyView::from).collect())
    }

    /// Starts registering a key: the options for `navigator.credentials.create`. With a
    /// second factor enrolled already, the session's factor must be fresh: adding a key changes
    /// how the account can be entered.
    pub async fn security_key_register_begin(
        &self,
        session: &SessionContext,
        kind: KeyKind,
        name: &KeyName,
    ) -> Result<serde_json::Value, AppError> {
        require_fresh(session, "security_key_register")?;
        let principal = &session.principal;
        let existing = self.store.credentials_of(principal.user_id).await?;
        let handle = match existing.first() {
            Some(c) => UserHandle::from_bytes(&c.user_handle).map_err(internal)?,
            None => UserHandle::generate(),
        };
        let exclude: Vec<(Vec<u8>, u8)> = existing
            .iter()
            .map(|c| {
                (
                    c.credential_id.clone(),
                    u8::try_from(c.transports).unwrap_or(0),
                )
            })
            .collect();
        let begun = self
            .rp
            .start_registration(
                kind.credential_kind(),
                &handle,
                principal.username.as_str(),
                &exclude,
            )
            .map_err(internal)?;
        let now = self.now_ms();
        self.store
            .ceremony_put(CeremonyRow {
                challenge: begun.challenge.to_vec(),
                purpose: CeremonyPurpose::Register,
                user_id: Some(principal.user_id),
                session_hash: Some(session.row.id_hash.clone()),
                credential_kind: Some(kind.as_str().into()),
                credential_name: Some(name.as_str().into()),
                state: begun.state,
                created_at_ms: now,
                expires_at_ms: now + CEREMONY_MS,
            })
            .await?;
        Ok(begun.options)
    }

    /// Finishes a registration with the authenticator's answer: the key is stored, and the
    /// session continues under a new id with a factor verified now (the new key's presence).
    pub async fn security_key_register_finish(
        &self,
        grant: &Grant,
        session: &SessionContext,
        response: &[u8],
        meta: &RequestMeta,
    ) -> Result<(LoginOutcome, SecurityKeyView), AppError> {
        require_fresh(session, "security_key_register")?;
        let principal = &session.principal;
        let challenge = RelyingParty::registration_challenge(response).map_err(malformed)?;
        let now = self.now_ms();
        let ceremony = self
            .store
            .ceremony_take(
                &challenge,
                CeremonyPurpose::Register,
                Some(&session.row.id_hash),
                now,
            )
            .await?
            .filter(|c| c.user_id == Some(principal.user_id))
            .ok_or_else(ceremony_gone)?;
        let kind = ceremony
            .credential_kind
            .as_deref()
            .and_then(KeyKind::parse)
            .ok_or_else(|| internal("a registration ceremony without its kind"))?;
        let name = ceremony.credential_name.clone().unwrap_or_default();
        let event = |outcome| {
            AuditEvent::new(
                now,
                actor(grant, meta),
                AuditAction::SecurityKeyRegistered,
                outcome,
            )
            .on("user", principal.username.as_str())
            .request(meta.request_id.clone())
        };
        let new = match self.rp.finish_registration(&ceremony.state, response) {
            Ok(new) => new,
            Err(e) => {
                let why = e.to_string();
                self.store
                    .audit_append(
                        event(Outcome::Failed).detail(format!("{}: {why}", kind.as_str())),
                    )
                    .await?;
                return Err(AppError::Invalid(format!(
                    "the security key was not registered: {why}"
                )));
            }
        };
        let row = CredentialRow {
            credential_id: new.id.clone(),
            user_id: principal.user_id,
            user_handle: new.user_handle.as_bytes().to_vec(),
            name,
            kind: kind.as_str().into(),
            public_key: new.public_key,
            state: new.state.to_vec(),
            sign_count: i64::from(new.sign_count),
            transports: i64::from(new.transports),
            user_verified: new.user_verified,
            created_at_ms: now,
            last_used_at_ms: None,
        };
        let view = SecurityKeyView::from(&row);
        let (token, renewed) = self.renewed(&session.row, now);
        let expires = renewed
            .absolute_expiry_ms
            .min(now + self.config.session_idle_timeout_ms);
        let detail = format!(
            "{} {:?} ({}); session renewed as {}",
            kind.as_str(),
            row.name,
            view.id,
            session_ref(&renewed.id_hash)
        );
        self.store
            .credential_add(
                CredentialAdd {
                    credential: row,
                    old_id_hash: session.row.id_hash.clone(),
                    new: renewed,
                },
                event(Outcome::Success).detail(detail),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::Conflict("this security key is registered already".into())
                }
                StoreError::NotFound => AppError::Conflict("the session ended meanwhile".into()),
                other => other.into(),
            })?;
        Ok((
            LoginOutcome {
                token,
                principal: Principal {
                    authentication: Authentication::MultiFactor { fresh: true },
                    factors: zf_policy::Factors {
                        security_key: true,
                        ..principal.factors
                    },
                    ..principal.clone()
                },
                expires_at_ms: expires,
            },
            view,
        ))
    }

    pub async fn security_key_rename(
        &self,
        grant: &Grant,
        session: &SessionContext,
        id: &KeyId,
        name: &KeyName,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let principal = &session.principal;
        let event = AuditEvent::new(
            self.now_ms(),
            actor(grant, meta),
            AuditAction::SecurityKeyRenamed,
            Outcome::Success,
        )
        .on("user", principal.username.as_str())
        .detail(format!("{} now {:?}", KeyId::text(&id.0), name.as_str()))
        .request(meta.request_id.clone());
        Ok(self
            .store
            .credential_rename(principal.user_id, &id.0, name.as_str(), event)
            .await?)
    }

    /// Removes one of one's own keys, with a fresh second factor.
    pub async fn security_key_remove(
        &self,
        grant: &Grant,
        session: &SessionContext,
        id: &KeyId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        require_fresh(session, "security_key_remove")?;
        let principal = &session.principal;
        let event = AuditEvent::new(
            self.now_ms(),
            actor(grant, meta),
            AuditAction::SecurityKeyRemoved,
            Outcome::Success,
        )
        .on("user", principal.username.as_str())
        .detail(format!("{} by its user", KeyId::text(&id.0)))
        .request(meta.request_id.clone());
        Ok(self
            .store
            .credential_remove(principal.user_id, &id.0, false, event)
            .await?)
    }

    /// A security administrator removes a user's key (lost or stolen), with a stated reason.
    /// Every session of the user ends with it: one may have been opened with the missing key.
    pub async fn user_security_key_remove(
        &self,
        grant: &Grant,
        username: &str,
        id: &KeyId,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let why = super::roles::reason(why)?;
        let user = self.user_named(username).await?;
        let event = AuditEvent::new(
            self.now_ms(),
            actor(grant, meta),
            AuditAction::SecurityKeyRemoved,
            Outcome::Success,
        )
        .on("user", user.username.as_str())
        .detail(format!(
            "{} by a security administrator, the user's sessions ended: {why}",
            KeyId::text(&id.0)
        ))
        .request(meta.request_id.clone());
        Ok(self
            .store
            .credential_remove(user.id, &id.0, true, event)
            .await?)
    }

    /// The options for `navigator.credentials.get` that a sign-in waiting for its second
    /// factor, or a step-up, answers with one of the user's keys.
    pub async fn security_key_assertion_begin(
        &self,
        session: &SessionContext,
    ) -> Result<serde_json::Value, AppError> {
        let principal = &session.principal;
        let purpose = if session.row.second_factor_pending {
            CeremonyPurpose::SecondFactor
        } else {
            CeremonyPurpose::StepUp
        };
        let keys = self.store.credentials_of(principal.user_id).await?;
        if keys.is_empty() {
            return Err(AppError::Invalid(
                "no security key is registered for this account".into(),
            ));
        }
        let allowed: Vec<(Vec<u8>, u8)> = keys
            .iter()
            .map(|c| {
                (
                    c.credential_id.clone(),
                    u8::try_from(c.transports).unwrap_or(0),
                )
            })
            .collect();
        let begun = self.rp.start_assertion(&allowed).map_err(internal)?;
        let now = self.now_ms();
        self.store
            .ceremony_put(CeremonyRow {
                challenge: begun.challenge.to_vec(),
                purpose,
                user_id: Some(principal.user_id),
                session_hash: Some(session.row.id_hash.clone()),
                credential_kind: None,
                credential_name: None,
                state: begun.state,
                created_at_ms: now,
                expires_at_ms: now + CEREMONY_MS,
            })
            .await?;
        Ok(begun.options)
    }

    /// Verifies an assertion for a ceremony begun on this session: the factor to consume, or
    /// why it was refused (audited by the caller) and whether it suggests a cloned key.
    async fn session_assertion(
        &self,
        session: &SessionContext,
        purpose: CeremonyPurpose,
        response: &[u8],
    ) -> Result<Result<(FactorUse, String), (String, bool)>, AppError> {
        let principal = &session.principal;
        let claim = RelyingParty::assertion_claim(response).map_err(malformed)?;
        let now = self.now_ms();
        let Some(ceremony) = self
            .store
            .ceremony_take(&claim.challenge, purpose, Some(&session.row.id_hash), now)
            .await?
            .filter(|c| c.user_id == Some(principal.user_id))
        else {
            return Ok(Err((
                "no such request waiting (replayed or expired)".into(),
                false,
            )));
        };
        let credential = match self.store.credential_get(&claim.credential_id).await? {
            Some((c, _)) if c.user_id == principal.user_id => c,
            Some(_) => return Ok(Err(("a key registered to another user".into(), false))),
            None => return Ok(Err(("an unknown or removed key".into(), false))),
        };
        let key = stored(&credential)?;
        match self.rp.finish_assertion(&ceremony.state, response, &key) {
            Ok(a) => Ok(Ok((key_use(&credential, a), credential.name))),
            Err(e @ (WebauthnError::Corrupt(_) | WebauthnError::Config(_))) => Err(internal(e)),
            Err(e) => Ok(Err(refusal(&e))),
        }
    }

    /// Completes a sign-in that waits for its second factor with a security key. A refused
    /// assertion counts towards the account's lock like a wrong code.
    pub async fn complete_sign_in_with_key(
        &self,
        session: &SessionContext,
        response: &[u8],
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
        let verdict = if locked {
            Err((LOCKED.to_owned(), false))
        } else {
            self.session_assertion(session, CeremonyPurpose::SecondFactor, response)
                .await?
        };
        let why = match verdict {
            Ok((factor, key_name)) => {
                let what = format!("{} {key_name:?}", factor_name(&factor));
                match self
                    .sign_in_accept(session, factor, &what, now, meta)
                    .await?
                {
                    Some(outcome) => return Ok(outcome),
                    None => "the key was used meanwhile".to_owned(),
                }
            }
            Err((why, cloned)) => {
                if cloned {
                    self.clone_suspected(
                        session_actor(principal, &session.session_ref, meta),
                        &principal.username,
                        now,
                        meta,
                    )
                    .await?;
                }
                why
            }
        };
        self.sign_in_refuse(
            session,
            guard,
            locked,
            now,
            &format!("security key refused: {why}"),
            meta,
        )
        .await?;
        Err(AppError::SecondFactorFailed)
    }

    /// Step-up with a security key: critical operations are allowed for the next few minutes,
    /// and the session continues under a new id.
    pub async fn step_up_with_key(
        &self,
        grant: &Grant,
        session: &SessionContext,
        response: &[u8],
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
        let verdict = if locked {
            Err((LOCKED.to_owned(), false))
        } else {
            self.session_assertion(session, CeremonyPurpose::StepUp, response)
                .await?
        };
        let why = match verdict {
            Ok((factor, key_name)) => {
                let what = format!("{} {key_name:?}", factor_name(&factor));
                match self
                    .step_up_accept(grant, session, factor, &what, now, meta)
                    .await?
                {
                    Some(outcome) => return Ok(outcome),
                    None => "the key was used meanwhile".to_owned(),
                }
            }
            Err((why, cloned)) => {
                if cloned {
                    self.clone_suspected(actor(grant, meta), &principal.username, now, meta)
                        .await?;
                }
                why
            }
        };
        self.step_up_refuse(
            grant,
            session,
            guard,
            locked,
            now,
            &format!("security key refused: {why}"),
            meta,
        )
        .await?;
        Err(AppError::SecondFactorFailed)
    }

    async fn clone_suspected(
        &self,
        actor: Actor,
        username: &Username,
        now: i64,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let event = AuditEvent::new(
            now,
            actor,
            AuditAction::SecurityKeyCloneSuspected,
            Outcome::Denied,
        )
        .on("user", username.as_str())
        .detail("the signature counter did not move forward; the assertion was refused")
        .request(meta.request_id.clone());
        Ok(self.store.audit_append(event).await?)
    }

    /// The options for a passwordless sign-in: any passkey of ours, with user verification.
    pub async fn passkey_begin(&self, meta: &RequestMeta) -> Result<serde_json::Value, AppError> {
        let now = self.now_ms();
        let source = meta.source.clone().unwrap_or_default();
        if !self
            .passkey_rates
            .admit(source, now, PASSKEY_BEGINS_PER_MINUTE)
        {
            return Err(AppError::RateLimited(format!(
                "at most {PASSKEY_BEGINS_PER_MINUTE} passkey sign-ins may begin per minute from one address"
            )));
        }
        let begun = self.rp.start_passkey().map_err(internal)?;
        self.store
            .ceremony_put(CeremonyRow {
                challenge: begun.challenge.to_vec(),
                purpose: CeremonyPurpose::Passkey,
                user_id: None,
                session_hash: None,
                credential_kind: None,
                credential_name: None,
                state: begun.state,
                created_at_ms: now,
                expires_at_ms: now + CEREMONY_MS,
            })
            .await?;
        Ok(begun.options)
    }

    /// Signs in with a passkey alone. The user verification the authenticator did (PIN,
    /// biometrics) stands in for the password, so the session counts as multi-factor; a
    /// disabled or locked account, or a throttled address, is refused like a wrong password,
    /// and a refused assertion counts towards the lock.
    pub async fn passkey_sign_in(
        &self,
        response: &[u8],
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        let claim = RelyingParty::passkey_claim(response).map_err(malformed)?;
        let now = self.now_ms();
        let ceremony = self
            .store
            .ceremony_take(&claim.challenge, CeremonyPurpose::Passkey, None, now)
            .await?;
        let found = self.store.credential_get(&claim.credential_id).await?;
        let throttled = self.address_throttled(meta, now).await?;
        let anonymous = |why: &str| {
            AuditEvent::new(
                now,
                Actor {
                    user_id: None,
                    name: "(passkey)".into(),
                    session_ref: None,
                    source: meta.source.clone(),
                    device: meta.device.clone(),
                },
                AuditAction::Login,
                Outcome::Failed,
            )
            .detail(format!("passkey: {why}"))
            .request(meta.request_id.clone())
        };
        let Some((credential, user)) = found else {
            self.store
                .audit_append(anonymous("an unknown or removed key"))
                .await?;
            return Err(AppError::LoginFailed);
        };
        let user_actor = Actor {
            user_id: Some(user.id),
            name: user.username.as_str().to_owned(),
            session_ref: None,
            source: meta.source.clone(),
            device: meta.device.clone(),
        };
        let failed = AuditEvent::new(now, user_actor.clone(), AuditAction::Login, Outcome::Failed)
            .request(meta.request_id.clone());
        let guard = self.store.login_guard(&user.username).await?;
        let locked = guard.locked_at(now);
        let refused = if throttled {
            Some("too many failures from this address")
        } else if user.disabled {
            Some("account disabled")
        } else if locked {
            Some(LOCKED)
        } else {
            None
        };
        if let Some(why) = refused {
            self.store
                .audit_append(failed.detail(format!("passkey: {why}")))
                .await?;
            return Err(AppError::LoginFailed);
        }
        let verdict = match ceremony {
            None => Err((
                "no such request waiting (replayed or expired)".to_owned(),
                false,
            )),
            Some(_)
                if claim.user_handle.as_ref().map(|h| h.as_bytes().as_slice())
                    != Some(credential.user_handle.as_slice()) =>
            {
                Err(("the user handle does not match the key".to_owned(), false))
            }
            Some(c) => {
                let key = stored(&credential)?;
                match self.rp.finish_passkey(&c.state, response, &key) {
                    Ok(a) => Ok(key_use(&credential, a)),
                    Err(e @ (WebauthnError::Corrupt(_) | WebauthnError::Config(_))) => {
                        return Err(internal(e))
                    }
                    Err(e) => Err(refusal(&e)),
                }
            }
        };
        let why = match verdict {
            Ok(factor) => {
                let FactorUse::SecurityKey(key) = factor else {
                    return Err(internal("a passkey's use is a key's use"));
                };
                let token = SessionToken::generate();
                let row = SessionRow {
                    id_hash: token.hash(),
                    user_id: user.id,
                    created_at_ms: now,
                    last_seen_ms: now,
                    absolute_expiry_ms: now + self.config.session_absolute_timeout_ms,
                    source: meta.source.clone(),
                    second_factor_pending: false,
                    factor_at_ms: Some(now),
                    device: meta.device.clone(),
                };
                let actor = Actor {
                    session_ref: Some(session_ref(&row.id_hash)),
                    ..user_actor.clone()
                };
                let event =
                    AuditEvent::new(now, actor.clone(), AuditAction::Login, Outcome::Success)
                        .detail(format!("passkey {:?}, user verified", credential.name))
                        .request(meta.request_id.clone());
                let expires = row.absolute_expiry_ms;
                let sign_in = PasskeySignIn {
                    session: row.clone(),
                    key,
                    limit: self.session_limit(&actor, now),
                };
                if self.store.passkey_sign_in(sign_in, event).await? {
                    let mut principal = self.principal_of(&user, &row, now);
                    principal.authentication = Authentication::MultiFactor { fresh: true };
                    return Ok(LoginOutcome {
                        token,
                        principal,
                        expires_at_ms: expires,
                    });
                }
                "the key was used meanwhile".to_owned()
            }
            Err((why, cloned)) => {
                if cloned {
                    self.clone_suspected(user_actor.clone(), &user.username, now, meta)
                        .await?;
                }
                why
            }
        };
        self.count_failure(
            &user.username,
            guard,
            now,
            failed,
            &format!("passkey refused: {why}"),
        )
        .await?;
        Err(AppError::LoginFailed)
    }

    /// Whether the address has failed to sign in too often lately (the same rule as a
    /// password sign-in).
    async fn address_throttled(&self, meta: &RequestMeta, now: i64) -> Result<bool, AppError> {
        let policy = &self.config.login;
        match (&meta.source, policy.address_limit) {
            (Some(source), limit) if limit > 0 => {
                let recent = zf_store::AuditQuery {
                    source: Some(source.clone()),
                    action: Some("login".into()),
                    outcome: Some("failed".into()),
                    from_ms: Some(now - policy.address_window_minutes.max(1) * 60_000),
                    ..zf_store::AuditQuery::default()
                };
                Ok(self.store.audit_count(&recent).await? >= limit)
            }
            _ => Ok(false),
        }
    }
}

fn key_use(credential: &CredentialRow, a: Asserted) -> FactorUse {
    FactorUse::SecurityKey(KeyUse {
        credential_id: credential.credential_id.clone(),
        seen: credential.state.clone(),
        state: a.state.to_vec(),
        sign_count: i64::from(a.sign_count),
    })
}
