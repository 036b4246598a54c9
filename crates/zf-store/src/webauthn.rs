//! Security keys and passkeys (WebAuthn): the registered credentials and the ceremonies in
//! flight. A ceremony is a row so that any node can finish what another began; taking it
//! deletes it, so a challenge answers once.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_domain::UserId;

use crate::{Result, SessionLimit, SessionRow, UserRow};

/// What a ceremony is for. A ceremony is only ever taken for the purpose it was begun for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyPurpose {
    Register,
    SecondFactor,
    StepUp,
    Passkey,
}

impl CeremonyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyPurpose::Register => "register",
            CeremonyPurpose::SecondFactor => "second_factor",
            CeremonyPurpose::StepUp => "step_up",
            CeremonyPurpose::Passkey => "passkey",
        }
    }
}

/// A ceremony begun and not yet answered.
#[derive(Clone)]
pub struct CeremonyRow {
    pub challenge: Vec<u8>,
    pub purpose: CeremonyPurpose,
    /// The user it was begun for; none for a passwordless sign-in, where the passkey names them.
    pub user_id: Option<UserId>,
    /// The session it was begun on (SHA-256 of its id); none for a passwordless sign-in.
    pub session_hash: Option<Vec<u8>>,
    /// For a registration: `passkey` or `security_key`, and the name the user gave it.
    pub credential_kind: Option<String>,
    pub credential_name: Option<String>,
    /// The relying-party library's encoded state.
    pub state: Vec<u8>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for CeremonyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyRow")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// A registered security key or passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRow {
    pub credential_id: Vec<u8>,
    pub user_id: UserId,
    pub user_handle: Vec<u8>,
    pub name: String,
    /// `passkey` (discoverable, user-verifying) or `security_key`.
    pub kind: String,
    /// The public key (COSE key as the relying-party library encodes it).
    pub public_key: Vec<u8>,
    /// The library's encoded counter and flags, compared and set on every use.
    pub state: Vec<u8>,
    pub sign_count: i64,
    pub transports: i64,
    pub user_verified: bool,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

/// The use of a credential: its state moves from `seen` to `state` only if no one moved it
/// meanwhile, so one assertion cannot be counted twice and a counter cannot be rolled back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUse {
    pub credential_id: Vec<u8>,
    pub seen: Vec<u8>,
    pub state: Vec<u8>,
    pub sign_count: i64,
}

/// A passwordless sign-in: the key's use and the new session, committed together.
#[derive(Clone, Debug)]
pub struct PasskeySignIn {
    pub session: SessionRow,
    pub key: KeyUse,
    pub limit: Option<SessionLimit>,
}

/// A new credential and the session it renews.
#[derive(Clone, Debug)]
pub struct CredentialAdd {
    pub credential: CredentialRow,
    pub old_id_hash: Vec<u8>,
    pub new: SessionRow,
}

#[async_trait]
pub trait WebauthnStore: Send + Sync {
    /// Stores a ceremony, removing the expired ones.
    async fn ceremony_put(&self, ceremony: CeremonyRow) -> Result<()>;
    /// Takes (deletes and returns) the unexpired ceremony of `challenge` begun for `purpose`
    /// on `session_hash` (none for a passwordless sign-in). A second take finds nothing.
    async fn ceremony_take(
        &self,
        challenge: &[u8],
        purpose: CeremonyPurpose,
        session_hash: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<Option<CeremonyRow>>;
    /// A user's credentials, oldest first.
    async fn credentials_of(&self, user: UserId) -> Result<Vec<CredentialRow>>;
    /// A credential, whoever has it, with its user.
    async fn credential_get(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(CredentialRow, UserRow)>>;
    /// Registers a credential and replaces the session, with `event`, in one transaction.
    /// `Conflict(WebauthnCredential)` if the credential id is registered already (to anyone);
    /// `NotFound` if the session ended.
    async fn credential_add(&self, add: CredentialAdd, event: AuditEvent) -> Result<()>;
    /// `NotFound` unless `user` has the credential.
    async fn credential_rename(
        &self,
        user: UserId,
        credential_id: &[u8],
        name: &str,
        event: AuditEvent,
    ) -> Result<()>;
    /// `NotFound` unless `user` has the credential. With `end_sessions`, every session of the
    /// user ends in the same transaction (a key reported lost or stolen may have opened one).
    async fn credential_remove(
        &self,
        user: UserId,
        credential_id: &[u8],
        end_sessions: bool,
        event: AuditEvent,
    ) -> Result<()>;
    /// Uses a passkey and starts the signed-in session it opens. `Ok(false)`, nothing changed,
    /// if the key's state moved meanwhile (the same assertion, or a concurrent one).
    async fn passkey_sign_in(&self, sign_in: PasskeySignIn, event: AuditEvent) -> Result<bool>;
}
