use std::sync::Arc;
use zf_crypto::{BlindIndex, Sealed};
use zf_domain::{
    ClientId, ClientName, ClientStatus, Fen, PersonName, ShortText, Tags, TaxpayerType, Uscc,
    UserId, Username,
};

use zf_policy::{CustomRole, CustomRoleSpec, Role, RoleName};

/// An argon2id PHC string. Not a secret in itself, but never worth printing.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub role: Role,
    pub password_hash: PasswordHash,
    pub must_change_password: bool,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: UserId,
    pub username: Username,
    /// The built-in role, or the base of the custom role the user holds.
    pub role: Role,
    /// A custom role held instead of the built-in one, read with the user so that an edit of
    /// the role reaches its holders on their next request.
    pub custom_role: Option<Arc<CustomRole>>,
    /// The team the user works in, which team-scoped roles reach.
    pub team: Option<String>,
    pub password_hash: PasswordHash,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub password_changed_at_ms: i64,
    /// A confirmed authenticator (TOTP) or a security key is enrolled. Whether sign-in asks for
    /// a second factor also depends on code factors and the role: `App::factors` decides.
    pub mfa_enrolled: bool,
    /// A confirmed authenticator app (TOTP).
    pub totp_enrolled: bool,
    /// How many security keys and passkeys the user has.
    pub security_keys: i64,
    /// A confirmed address (e-mail, SMS) receives one-time codes; whether that counts as a
    /// second factor for the user's role is the MFA policy's to say.
    pub code_factor: bool,
    /// A confirmed address receives codes by e-mail.
    pub code_email: bool,
    /// A confirmed number receives codes by SMS.
    pub code_sms: bool,
}

/// A server-side session. Only the SHA-256 of the session id is stored, so a copy of the
/// database does not let anyone sign in.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub user_id: UserId,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    pub absolute_expiry_ms: i64,
    pub source: Option<String>,
    /// The password was right but the second factor is still owed: the session can do nothing
    /// but complete the sign-in or end.
    pub second_factor_pending: bool,
    /// When a second factor was last verified on this session; absent if never.
    pub factor_at_ms: Option<i64>,
    /// The User-Agent at sign-in, shortened; shown in the user's list of sessions.
    pub device: Option<String>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("user_id", &self.user_id)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .field("second_factor_pending", &self.second_factor_pending)
            .field("factor_at_ms", &self.factor_at_ms)
            .finish_non_exhaustive()
    }
}

/// A user's authenticator. The secret is sealed under the MFA system key; the store never
/// sees it in the clear.
#[derive(Clone, Debug)]
pub struct MfaRow {
    pub user_id: UserId,
    pub totp_secret: Sealed,
    pub created_at_ms: i64,
    /// Absent until the user proved the authenticator with a first code.
    pub confirmed_at_ms: Option<i64>,
    /// The last time step accepted, so that each code works once.
    pub last_step: Option<i64>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
}

/// A second factor as the store consumes it: once only, checked in the transaction that uses
/// it, so two nodes cannot both accept the same code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactorUse {
    /// A TOTP code of this time step; accepted only if later than the last accepted step.
    Totp { step: i64 },
    /// A recovery code, by its keyed hash; accepted only if unused.
    RecoveryCode { hash: BlindIndex },
    /// A security key's assertion; accepted only if the key's state is still the one it was
    /// verified against.
    SecurityKey(crate::KeyUse),
    /// The user's live one-time code (e-mail, SMS), by its keyed hash; accepted only if unused
    /// and unexpired.
    Code { hash: BlindIndex },
}

/// At most `keep` signed-in sessions per user: when a new one would exceed it, the oldest end,
/// recorded by `event`.
#[derive(Clone, Debug)]
pub struct SessionLimit {
    pub keep: u32,
    pub event: zf_audit::AuditEvent,
}

/// Replaces a session by a new one after a second factor (completing a sign-in, stepping up):
/// the old id stops working in the transaction that starts the new one.
#[derive(Clone, Debug)]
pub struct SessionUpgrade {
    pub old_id_hash: Vec<u8>,
    pub new: SessionRow,
    pub factor: FactorUse,
    /// Completing a sign-in: the failure counter resets and the sign-in time is recorded.
    pub completes_sign_in: bool,
    pub limit: Option<SessionLimit>,
}

/// Confirms a pending enrolment with its first code: the authenticator becomes active with its
/// recovery codes, and the session is replaced by one with a verified factor.
#[derive(Clone, Debug)]
pub struct MfaConfirm {
    pub user_id: UserId,
    pub step: i64,
    pub recovery_codes: Vec<BlindIndex>,
    pub confirmed_at_ms: i64,
    pub old_id_hash: Vec<u8>,
    pub new: SessionRow,
}

/// A client as stored: plain business identifiers, sealed sensitive fields.
#[derive(Clone, Debug)]
pub struct ClientRow {
    pub id: ClientId,
    pub name: ClientName,
    pub uscc: Uscc,
    pub taxpayer_type: TaxpayerType,
    pub legal_rep_name: PersonName,
    pub legal_rep_id_number: Sealed,
    pub legal_rep_id_index: BlindIndex,
    pub assigned_accountant: Option<UserId>,
    pub status: ClientStatus,
    pub team: Option<ShortText>,
    pub tags: Tags,
    /// Free-text notes, sealed: accountants write anything into them.
    pub notes: Option<Sealed>,
    /// 注册资本, public in the business registry.
    pub registered_capital: Option<Fen>,
    /// 主管税务机关.
    pub tax_authority: Option<ShortText>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: i64,
}

/// A client row with the wrapped data key that opens its sealed fields.
#[derive(Clone, Debug)]
pub struct ClientRecord {
    pub row: ClientRow,
    pub key: crate::KeySlots,
}

/// The fields an update replaces; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ClientChange {
    pub name: Option<ClientName>,
    pub uscc: Option<Uscc>,
    pub taxpayer_type: Option<TaxpayerType>,
    pub legal_rep_name: Option<PersonName>,
    pub legal_rep_id_number: Option<(Sealed, BlindIndex)>,
    pub status: Option<ClientStatus>,
    pub tags: Option<Tags>,
    /// `Some(None)` clears a field; `None` leaves it.
    pub team: Option<Option<ShortText>>,
    pub notes: Option<Option<Sealed>>,
    pub registered_capital: Option<Option<Fen>>,
    pub tax_authority: Option<Option<ShortText>>,
    pub assigned_accountant: Option<Option<UserId>>,
    pub updated_at_ms: i64,
}

/// Tags as stored: `,a,b,` so that one tag is found with `LIKE '%,a,%'`; empty for none.
pub(crate) fn tags_column(tags: &Tags) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(
            ",{},",
            tags.iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// Turns stored primitives back into domain values; a value that no longer parses is reported
/// as corruption rather than passed on.
pub(crate) mod decode {
    use super::*;
    use crate::{Result, StoreError};

    /// A token row from its stored columns; `clients` are added by the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn token(
        id: &str,
        user_id: &str,
        name: String,
        secret_hash: Vec<u8>,
        permissions: &str,
        listed_clients: bool,
        created_at_ms: i64,
        expires_at_ms: i64,
        last_used_at_ms: Option<i64>,
        last_used_source: Option<String>,
        revoked_at_ms: Option<i64>,
        revoked_by: Option<String>,
    ) -> Result<crate::TokenRow> {
        Ok(crate::TokenRow {
            id: zf_domain::TokenId::parse(id)
                .map_err(|e| StoreError::corrupt("api_tokens.id", e))?,
            user_id: self::user_id(user_id)?,
            name,
            secret_hash,
            permissions: permissions
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            listed_clients,
            clients: Vec::new(),
            created_at_ms,
            expires_at_ms,
            last_used_at_ms,
            last_used_source,
            revoked_at_ms,
            revoked_by,
        })
    }

    pub fn user_id(s: &str) -> Result<UserId> {
        UserId::parse(s).map_err(|e| StoreError::corrupt("user id", e))
    }

    pub fn mfa(
        user_id: &str,
        totp_secret: Vec<u8>,
        created_at_ms: i64,
        confirmed_at_ms: Option<i64>,
        last_step: Option<i64>,
        recovery_codes_left: i64,
    ) -> Result<MfaRow> {
        Ok(MfaRow {
            user_id: self::user_id(user_id)?,
            totp_secret: Sealed::from_bytes(totp_secret)
                .map_err(|e| StoreError::corrupt("user_mfa.totp_secret", e))?,
            created_at_ms,
            confirmed_at_ms,
            last_step,
            recovery_codes_left,
        })
    }

    /// A stored custom role, checked again as it is read: a definition edited in the database
    /// to grant what no custom role may is refused rather than obeyed.
    pub fn custom_role_from(name: &str, definition: &str) -> Result<CustomRole> {
        let name = RoleName::parse(name).map_err(|e| StoreError::corrupt("custom role name", e))?;
        let spec: CustomRoleSpec = serde_json::from_str(definition)
            .map_err(|e| StoreError::corrupt("custom role definition", e))?;
        CustomRole::new(name, &spec).map_err(|e| StoreError::corrupt("custom role definition", e))
    }

    pub fn client_id(s: &str) -> Result<ClientId> {
        ClientId::parse(s).map_err(|e| StoreError::corrupt("client id", e))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn user(
        id: &str,
        username: &str,
        role: &str,
        password_hash: String,
        must_change_password: bool,
        disabled: bool,
        created_at_ms: i64,
        password_changed_at_ms: i64,
        totp_enrolled: bool,
        security_keys: i64,
        code_email: bool,
        code_sms: bool,
        team: Option<String>,
        custom_role: Option<(&str, &str)>,
    ) -> Result<UserRow> {
        Ok(UserRow {
            id: user_id(id)?,
            username: Username::parse(username).map_err(|e| StoreError::corrupt("username", e))?,
            role: Role::parse(role).map_err(|e| StoreError::corrupt("role", e))?,
            custom_role: custom_role
                .map(|(name, definition)| custom_role_from(name, definition).map(Arc::new))
                .transpose()?,
            team,
            password_hash: PasswordHash(password_hash),
            must_change_password,
            disabled,
            created_at_ms,
            password_changed_at_ms,
            mfa_enrolled: totp_enrolled || security_keys > 0,
            totp_enrolled,
            security_keys,
            code_factor: code_email || code_sms,
            code_email,
            code_sms,
        })
    }

    /// The columns of a client row joined with its key, in the order the queries select them.
    pub struct ClientColumns {
        pub id: String,
        pub name: String,
        pub uscc: String,
        pub taxpayer_type: String,
        pub legal_rep_name: String,
        pub legal_rep_id_number: Vec<u8>,
        pub legal_rep_id_index: Vec<u8>,
        pub assigned_accountant: Option<String>,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
        pub version: i64,
        pub wrapped_dek: Vec<u8>,
        pub dek_version: i64,
        pub previous_dek: Option<Vec<u8>>,
        pub previous_version: Option<i64>,
        pub status: String,
        pub team: Option<String>,
        pub tags: String,
        pub notes: Option<Vec<u8>>,
        pub registered_capital: Option<i64>,
        pub tax_authority: Option<String>,
    }

    pub fn client(c: ClientColumns) -> Result<ClientRecord> {
        Ok(ClientRecord {
            row: ClientRow {
                id: client_id(&c.id)?,
                name: ClientName::parse(&c.name).map_err(|e| StoreError::corrupt("name", e))?,
                uscc: Uscc::parse(&c.uscc).map_err(|e| StoreError::corrupt("uscc", e))?,
                taxpayer_type: TaxpayerType::parse(&c.taxpayer_type)
                    .map_err(|e| StoreError::corrupt("taxpayer_type", e))?,
                legal_rep_name: PersonName::parse(&c.legal_rep_name)
                    .map_err(|e| StoreError::corrupt("legal_rep_name", e))?,
                legal_rep_id_number: Sealed::from_bytes(c.legal_rep_id_number)
                    .map_err(|e| StoreError::corrupt("legal_rep_id_number", e))?,
                legal_rep_id_index: BlindIndex::from_bytes(&c.legal_rep_id_index)
                    .map_err(|e| StoreError::corrupt("legal_rep_id_index", e))?,
                assigned_accountant: c.assigned_accountant.as_deref().map(user_id).transpose()?,
                status: ClientStatus::parse(&c.status)
                    .map_err(|e| StoreError::corrupt("status", e))?,
                team: c
                    .team
                    .as_deref()
                    .map(ShortText::parse)
                    .transpose()
                    .map_err(|e| StoreError::corrupt("team", e))?,
                tags: Tags::parse(c.tags.trim_matches(','))
                    .map_err(|e| StoreError::corrupt("tags", e))?,
                notes: c
                    .notes
                    .map(Sealed::from_bytes)
                    .transpose()
                    .map_err(|e| StoreError::corrupt("notes", e))?,
                registered_capital: c
                    .registered_capital
                    .map(Fen::new)
                    .transpose()
                    .map_err(|e| StoreError::corrupt("registered_capital", e))?,
                tax_authority: c
                    .tax_authority
                    .as_deref()
                    .map(ShortText::parse)
                    .transpose()
                    .map_err(|e| StoreError::corrupt("tax_authority", e))?,
                created_at_ms: c.created_at_ms,
                updated_at_ms: c.updated_at_ms,
                version: c.version,
            },
            key: crate::KeySlots::decode(
                c.wrapped_dek,
                c.dek_version,
                c.previous_dek,
                c.previous_version,
                "client_keys",
            )?,
        })
    }
}

pub(crate) mod alerts {
    use zf_audit::{Alert, AlertRecord, AlertStatus, Severity};

    use crate::{Result, StoreError};

    /// The columns of an alert row, in the order the queries select them.
    pub struct AlertColumns {
        pub id: String,
        pub at_ms: i64,
        pub rule: String,
        pub severity: String,
        pub user_id: Option<String>,
        pub username: Option<String>,
        pub source: Option<String>,
        pub summary: String,
        pub event_seq: Option<i64>,
        pub responses: String,
        pub status: String,
        pub updated_at_ms: i64,
        pub updated_by: Option<String>,
    }

    pub const SELECT: &str = "SELECT id, at, rule, severity, user_id, username, source, summary,
        event_seq, responses, status, updated_at, updated_by FROM alerts";

    pub fn decode(c: AlertColumns) -> Result<AlertRecord> {
        Ok(AlertRecord {
            alert: Alert {
                id: c.id,
                at_ms: c.at_ms,
                rule: c.rule,
                severity: Severity::parse(&c.severity)
                    .ok_or_else(|| StoreError::corrupt("alerts.severity", &c.severity))?,
                user_id: c.user_id,
                username: c.username,
                source: c.source,
                summary: c.summary,
                event_seq: c.event_seq,
                responses: serde_json::from_str(&c.responses)
                    .map_err(|e| StoreError::corrupt("alerts.responses", e))?,
            },
            status: AlertStatus::parse(&c.status)
                .ok_or_else(|| StoreError::corrupt("alerts.status", &c.status))?,
            updated_at_ms: c.updated_at_ms,
            updated_by: c.updated_by,
        })
    }

    pub fn responses_json(alert: &Alert) -> String {
        serde_json::to_string(&alert.responses).unwrap_or_else(|_| "[]".into())
    }
}

impl UserRow {
    /// Whether the role the user holds — custom or built in — grants `permission`.
    pub fn may(&self, permission: zf_policy::Permission) -> bool {
        self.custom_role
            .as_ref()
            .map_or_else(|| self.role.may(permission), |c| c.may(permission))
    }

    pub fn scope_rule(&self) -> zf_policy::ScopeRule {
        self.custom_role
            .as_ref()
            .map_or_else(|| self.role.scope_rule(), |c| c.scope())
    }

    /// The role the user holds, as a permission change names it.
    pub fn held_role(&self) -> zf_policy::HeldRole {
        zf_policy::HeldRole::of(self.role, self.custom_role.as_deref())
    }
}
