//! API tokens for integrations: a secret shown once, stored only as its SHA-256, carrying a
//! subset of its owner's permissions and optionally only named clients, with an expiry. A
//! token never outranks its owner: the policy checks the owner's current role on every request
//! as well as the token's list, so a job transfer narrows every token at once.
//!
//! Every request made with a token is audited (`api_token_used`, with its method and path) and
//! rate-limited per token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::{ClientId, TokenId, Username};
use zf_policy::{decide, Authentication, Grant, Operation, Permission, Principal, TokenGrant};
use zf_store::TokenRow;

use crate::{actor, App, AppError, RequestMeta};

/// What every token secret starts with, so that scanners and people recognise one.
const PREFIX: &str = "zft_";
/// 256 random bits, base64url: 43 characters.
const SECRET_LEN: usize = 43;

/// Limits on tokens, from the `[api_tokens]` section of the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenPolicy {
    /// The longest a token may live, in days.
    pub max_days: u32,
    /// Requests a token may make per minute (on each server); beyond it, 429.
    pub requests_per_minute: u32,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            max_days: 90,
            requests_per_minute: 600,
        }
    }
}

/// A token's secret as presented or just made. Only its hash is kept.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TokenSecret(String);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

impl TokenSecret {
    fn generate() -> Self {
        TokenSecret(format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(zf_crypto::random_bytes::<32>())
        ))
    }

    /// Accepts what a client sent after `Bearer `; anything not shaped like a token is none.
    pub fn from_presented(value: &str) -> Option<Self> {
        let body = value.strip_prefix(PREFIX)?;
        let ok = body.len() == SECRET_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| TokenSecret(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

/// A request to issue a token.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, e.g. "bank statement import".
    pub name: String,
    /// Permissions as `resource:action` (e.g. `client:read`), each one the owner holds.
    pub permissions: Vec<String>,
    /// Only these clients (each one the owner reaches); empty or absent: all the owner reaches.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub clients: Vec<ClientId>,
    /// Days until it expires (1 to the configured maximum, 90 by default).
    pub expires_in_days: u32,
}

/// A token as its owner and the security administrator see it; never its secret.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    #[schema(value_type = String)]
    pub id: TokenId,
    pub name: String,
    pub permissions: Vec<String>,
    /// The clients it is limited to; empty when it reaches all its owner reaches.
    #[schema(value_type = Vec<String>)]
    pub clients: Vec<ClientId>,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    /// Neither revoked nor expired.
    pub active: bool,
}

/// A token just issued: the secret is in this answer and nowhere else, ever.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Send as `Authorization: Bearer <secret>`. Shown once; store it now.
    pub secret: String,
    pub token: TokenView,
}

fn view(t: TokenRow, now: i64) -> TokenView {
    TokenView {
        active: t.revoked_at_ms.is_none() && now < t.expires_at_ms,
        id: t.id,
        name: t.name,
        permissions: t.permissions,
        clients: t.clients,
        created_at: t.created_at_ms,
        expires_at: t.expires_at_ms,
        last_used_at: t.last_used_at_ms,
        last_used_from: t.last_used_source,
        revoked_at: t.revoked_at_ms,
        revoked_by: t.revoked_by,
    }
}

/// Requests per key (a token, a source address) in the current minute, on this server.
#[derive(Clone)]
pub(crate) struct MinuteRates<K>(Arc<Mutex<HashMap<K, (i64, u32)>>>);

impl<K> Default for MinuteRates<K> {
    fn default() -> Self {
        MinuteRates(Arc::default())
    }
}

/// Requests per API token in the current minute.
pub(crate) type TokenRates = MinuteRates<TokenId>;

impl<K: std::hash::Hash + Eq> MinuteRates<K> {
    /// Counts a request; `false` once the key is over its limit for this minute.
    pub(crate) fn admit(&self, token: K, now_ms: i64, limit: u32) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let mut rates = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the minutes gone by, so the map holds only tokens in use.
        if rates.len() > 10_000 {
            rates.retain(|_, (m, _)| *m == minute);
        }
        let entry = rates.entry(token).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

impl App {
    /// Issues a token to the caller. The caller's grant is for [`Operation::TokenCreate`], a
    /// critical operation, so a fresh second factor stands behind it.
    pub async fn token_create(
        &self,
        grant: &Grant,
        request: NewToken,
        meta: &RequestMeta,
    ) -> Result<IssuedToken, AppError> {
        let owner = grant
            .principal()
            .ok_or_else(|| AppError::Invalid("sign in first".into()))?;
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(AppError::Invalid(
                "name the token in 1 to 80 characters".into(),
            ));
        }
        let max_days = self.config.api_tokens.max_days;
        if !(1..=max_days).contains(&request.expires_in_days) {
            return Err(AppError::Invalid(format!(
                "expires_in_days must be between 1 and {max_days}"
            )));
        }
        if request.permissions.is_empty() {
            return Err(AppError::Invalid(
                "give the token at least one permission".into(),
            ));
        }
        let mut permissions: Vec<String> = Vec::new();
        for name in &request.permissions {
            let held = Permission::parse(name).filter(|p| owner.may(*p));
            if held.is_none() {
                return Err(AppError::Invalid(format!(
                    "{name} is not a permission you hold, so a token of yours cannot carry it"
                )));
            }
            if !permissions.contains(name) {
                permissions.push(name.clone());
            }
        }
        let mut clients = request.clients.clone();
        clients.sort();
        clients.dedup();
        if !clients.is_empty() {
            // Only clients the owner reaches now; an unreachable one answers as absent.
            let reach = decide(Some(owner), Operation::ClientRead)?;
            for id in &clients {
                if self.store.client_get(reach.scope(), *id).await?.is_none() {
                    return Err(AppError::Invalid(format!(
                        "client {id} is not one you can reach, so a token of yours cannot name it"
                    )));
                }
            }
        }
        let now = self.now_ms();
        let secret = TokenSecret::generate();
        let row = TokenRow {
            id: TokenId::new_random(),
            user_id: owner.user_id,
            name,
            secret_hash: secret.hash(),
            permissions,
            listed_clients: !clients.is_empty(),
            clients,
            created_at_ms: now,
            expires_at_ms: now + i64::from(request.expires_in_days) * 86_400_000,
            last_used_at_ms: None,
            last_used_source: None,
            revoked_at_ms: None,
            revoked_by: None,
        };
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::TokenCreated,
            Outcome::Success,
        )
        .on("api_token", row.id.to_string())
        .detail(format!(
            "\"{}\": {}; {}; expires in {} days",
            row.name,
            row.permissions.join(", "),
            if row.listed_clients {
                format!("{} named clients", row.clients.len())
            } else {
                "every client the owner reaches".into()
            },
            request.expires_in_days
        ))
        .request(meta.request_id.clone());
        self.store.token_create(row.clone(), event).await?;
        Ok(IssuedToken {
            secret: secret.expose().to_owned(),
            token: view(row, now),
        })
    }

    /// The caller's tokens, newest first.
    pub async fn tokens_own(&self, grant: &Grant) -> Result<Vec<TokenView>, AppError> {
        let owner = grant.principal().ok_or(AppError::NotFound)?;
        let now = self.now_ms();
        Ok(self
            .store
            .tokens_of(owner.user_id)
            .await?
            .into_iter()
            .map(|t| view(t, now))
            .collect())
    }

    /// Another user's tokens, for the security administrator.
    pub async fn tokens_of_user(&self, username: &Username) -> Result<Vec<TokenView>, AppError> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let now = self.now_ms();
        Ok(self
            .store
            .tokens_of(user.id)
            .await?
            .into_iter()
            .map(|t| view(t, now))
            .collect())
    }

    /// Revokes one of the caller's tokens; `NotFound` for another's or one revoked already.
    pub async fn token_revoke_own(
        &self,
        grant: &Grant,
        id: TokenId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let owner = grant.principal().ok_or(AppError::NotFound)?;
        self.revoke(grant, Some(owner.user_id), id, "by its owner", meta)
            .await
    }

    /// Revokes a token of `username`, for the security administrator.
    pub async fn token_revoke_user(
        &self,
        grant: &Grant,
        username: &Username,
        id: TokenId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        self.revoke(
            grant,
            Some(user.id),
            id,
            "by the security administrator",
            meta,
        )
        .await
    }

    async fn revoke(
        &self,
        grant: &Grant,
        owner: Option<zf_domain::UserId>,
        id: TokenId,
        how: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let now = self.now_ms();
        let by = actor(grant, meta).name;
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::TokenRevoked,
            Outcome::Success,
        )
        .on("api_token", id.to_string())
        .detail(how)
        .request(meta.request_id.clone());
        self.store.token_revoke(id, owner, now, by, event).await?;
        Ok(())
    }

    /// Turns a presented token into its owner as the policy sees them, narrowed by the token.
    /// `None` for an unknown, revoked or expired token or a disabled owner (the caller answers
    /// 401); every accepted use is recorded with `what` (method and path) before it is served.
    pub async fn resolve_api_token(
        &self,
        secret: &TokenSecret,
        what: &str,
        meta: &RequestMeta,
    ) -> Result<Option<Principal>, AppError> {
        let Some((token, user)) = self.store.token_by_secret(&secret.hash()).await? else {
            return Ok(None);
        };
        let now = self.now_ms();
        let refused = if token.revoked_at_ms.is_some() {
            Some("the token was revoked")
        } else if now >= token.expires_at_ms {
            Some("the token expired")
        } else if user.disabled {
            Some("the token's owner is disabled")
        } else {
            None
        };
        let actor = Actor {
            user_id: Some(user.id),
            name: user.username.as_str().to_owned(),
            session_ref: Some(token_ref(token.id)),
            source: meta.source.clone(),
            device: meta.device.clone(),
        };
        if let Some(why) = refused {
            let event = AuditEvent::new(now, actor, AuditAction::TokenUsed, Outcome::Failed)
                .on("api_token", token.id.to_string())
                .detail(format!("{what}: {why}"))
                .request(meta.request_id.clone());
            self.store.audit_append(event).await?;
            return Ok(None);
        }
        let limit = self.config.api_tokens.requests_per_minute;
        if !self.token_rates.admit(token.id, now, limit) {
            return Err(AppError::RateLimited(format!(
                "this token may make {limit} requests a minute; wait and retry"
            )));
        }
        let event = AuditEvent::new(now, actor, AuditAction::TokenUsed, Outcome::Success)
            .on("api_token", token.id.to_string())
            .detail(what.to_owned())
            .request(meta.request_id.clone());
        self.store
            .token_used(token.id, now, meta.source.clone(), event)
            .await?;
        Ok(Some(Principal {
            user_id: user.id,
            username: user.username.clone(),
            role: user.role,
            custom_role: user.custom_role.clone(),
            team: user.team.clone(),
            must_change_password: user.must_change_password,
            authentication: Authentication::ApiToken,
            factors: zf_policy::Factors::default(),
            token: Some(TokenGrant {
                id: token.id,
                permissions: token
                    .permissions
                    .iter()
                    .filter_map(|p| Permission::parse(p))
                    .collect(),
                listed_clients: token.listed_clients,
            }),
        }))
    }
}

/// How audit events name the token a request came with (its id is not a secret).
pub fn token_ref(id: TokenId) -> String {
    format!("token:{}", &id.to_string()[..8])
}
