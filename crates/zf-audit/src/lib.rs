//! The audit event: what the product records about every change, every sensitive read and every
//! refusal. The store writes an event in the same transaction as the change it describes; the
//! hash chain and its verification build on this type.

mod archive;
mod chain;
mod checkpoint;
mod verify;

use serde::Serialize;
use zf_domain::UserId;

pub use archive::{Archive, ArchiveError, ArchiveManifest};
pub use chain::GENESIS;
pub use checkpoint::{Checkpoint, CheckpointFileError};
pub use verify::{Finding, Report, Verifier};

/// Everything that is audited. An enum, never a free string, so the set is reviewable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    SetupAdministratorCreated,
    UserCreated,
    Login,
    Logout,
    PasswordChanged,
    ClientCreated,
    ClientUpdated,
    /// A client was erased: its row, records and data key destroyed. Since erasure needs two
    /// people, the detail names who requested it and who approved it, and why.
    ClientDeleted,
    /// A supervisor asked for a client to be erased; the detail holds the reason. Nothing is
    /// destroyed until a second person approves.
    ErasureRequested,
    /// A request to erase a client was rejected (or withdrawn); the client stays.
    ErasureRejected,
    /// A read that returned a sensitive field in the clear.
    ClientSensitiveRead,
    /// A masked field shown in full on request; the detail holds the stated reason.
    FieldRevealed,
    ClientSearched,
    /// A request the policy refused.
    AccessDenied,
    /// `audit verify` ran; the outcome says whether the log was intact.
    AuditVerified,
    /// Signed checkpoints were written out of the database.
    AuditCheckpointsExported,
    /// Someone searched the audit log; the detail holds the filters.
    AuditSearched,
    /// The audit log was exported for security tooling.
    AuditExported,
    /// A monitoring rule raised an alert.
    AlertRaised,
    AlertAcknowledged,
    AlertResolved,
    /// An account was locked, by a monitoring rule or by an administrator.
    AccountLocked,
    AccountUnlocked,
    /// Every session of an account was ended.
    SessionsRevoked,
    /// A user's role changed (job transfer); the detail says from what to what and why.
    RoleChanged,
    /// A custom role was created or its definition changed; the detail says what it grants and
    /// why.
    RoleDefined,
    /// A custom role nobody held was deleted.
    RoleDeleted,
    /// A user moved to another team (job transfer); the detail says from what to what and why.
    TeamChanged,
    /// A supervisor approved moving a moved user's clients to another accountant; the detail
    /// says from whom to whom, how many, and why.
    ClientsReassigned,
    /// A supervisor rejected a request to move a moved user's clients.
    ReassignmentRejected,
    /// A new KEK version became the one new keys are wrapped under.
    KekRotated,
    /// Somebody ran the security posture check; the detail says what it found.
    SecurityPostureChecked,
    /// A batch of wrapped keys was rewrapped under the current KEK; the detail says how many,
    /// from which table and versions.
    KeysRewrapped,
    /// A KEK version that nothing refers to any more was retired; it unwraps nothing.
    KekRetired,
    /// Re-encryption of all data under new data keys started.
    ReencryptionStarted,
    /// Re-encryption finished: every holder has a new data key and no value is under an old one.
    ReencryptionFinished,
    /// A blind-index key rotation started: a new key computes every new search token and the
    /// stored tokens are being computed again under it.
    BlindIndexRotationStarted,
    /// Every search token is under the new blind-index key; the previous key is deleted.
    BlindIndexRotationFinished,
    /// Data keys that had sealed their share of messages were replaced; the detail says how
    /// many and the threshold.
    DataKeysReplaced,
    /// An access review campaign started.
    ReviewStarted,
    /// A reviewer certified or revoked one user's access.
    ReviewDecided,
    /// A decoy client was planted to catch insiders and intruders.
    HoneytokenPlanted,
    /// Events past their retention were moved to a signed archive file.
    AuditArchived,
    /// The audit retention period was changed (through the configuration).
    AuditRetentionChanged,
    /// A record of a client (contact, contract, financial record, …) was created; `resource` names its kind.
    RecordCreated,
    RecordUpdated,
    RecordDeleted,
    /// Records were read with sensitive fields in the clear.
    RecordSensitiveRead,
    /// An exact search on an encrypted field of records or leads.
    RecordSearched,
    /// The client list left the system as a file; the detail says how many rows and how masked.
    ClientsExported,
    /// Clients were imported from a file; the detail says how many.
    ClientsImported,
    /// A client was assigned to another accountant or team.
    ClientAssigned,
    DocumentDownloaded,
    /// A tax UKey, certificate or seal left the safe; the detail holds the reason.
    CustodyCheckedOut,
    CustodyCheckedIn,
    FilingTasksGenerated,
    LeadCreated,
    LeadUpdated,
    /// A lead became a client.
    LeadConverted,
    /// An auditor was given an engagement on a client, or it ended; the detail says which.
    EngagementChanged,
    /// The password was right and the sign-in now waits for the second factor.
    LoginSecondFactorPending,
    /// A user started setting up an authenticator (TOTP).
    MfaEnrolmentStarted,
    /// An authenticator was confirmed by its first code and is now required at sign-in; a
    /// wrong first code is recorded as a failure.
    MfaEnabled,
    /// An operator removed a user's authenticator and recovery codes.
    MfaReset,
    /// A user replaced their recovery codes with a new set; the old ones stopped working.
    RecoveryCodesRegenerated,
    /// A second factor verified on a signed-in session for a critical operation (step-up).
    StepUp,
    /// A security key or passkey was registered (or a registration was refused).
    SecurityKeyRegistered,
    /// A security key or passkey was renamed.
    SecurityKeyRenamed,
    /// A security key or passkey was removed, by its user or by a security administrator.
    SecurityKeyRemoved,
    /// A security key's signature counter did not move forward: two authenticators may hold
    /// the same key. The assertion was refused.
    SecurityKeyCloneSuspected,
    /// A one-time code was sent by e-mail or SMS (the detail names the channel, the masked
    /// address and the purpose, never the code); a refused request (throttled) or a failed
    /// delivery is recorded with its outcome.
    SecondFactorCodeSent,
    /// One session was ended by its user, or by the concurrent-session limit.
    SessionRevoked,
    /// A backup of the whole database was written (or failed); the detail names the file, the
    /// backup id and the row count.
    BackupCreated,
    /// A backup file was checked without restoring it; the outcome says whether it verified.
    BackupVerified,
    /// The database was restored from a backup; recorded in the restored database, right
    /// after the audit chain the backup carried.
    BackupRestored,
    /// An API token was issued; the detail names its permissions, clients and expiry.
    TokenCreated,
    /// An API token was revoked, by its owner or the security administrator.
    TokenRevoked,
    /// A request came with an API token: the detail names the method and path, or why the
    /// token was refused.
    TokenUsed,
    /// A client erased before a backup was restored came back with it and was erased again.
    ErasureReapplied,
    /// The server took a backup (on its schedule or on demand), copied it to its targets and
    /// applied retention; the outcome says whether every target has it, the detail names the
    /// backup, the targets and what retention removed.
    BackupRun,
    /// A backup was restored into a scratch database and checked: counts, digests, and every
    /// sealed field opened with this instance's keys.
    RestoreTested,
    /// A disaster-recovery drill restored the newest off-site backup on a fresh data directory
    /// and served it; the detail carries the recovery time and the age of the data.
    DrillRun,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SetupAdministratorCreated => "setup_administrator_created",
            AuditAction::UserCreated => "user_created",
            AuditAction::Login => "login",
            AuditAction::Logout => "logout",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::ClientCreated => "client_created",
            AuditAction::ClientUpdated => "client_updated",
            AuditAction::ClientDeleted => "client_deleted",
            AuditAction::ErasureRequested => "erasure_requested",
            AuditAction::ErasureRejected => "erasure_rejected",
            AuditAction::ClientSensitiveRead => "client_sensitive_read",
            AuditAction::FieldRevealed => "field_revealed",
            AuditAction::ClientSearched => "client_searched",
            AuditAction::AccessDenied => "access_denied",
            AuditAction::AuditVerified => "audit_verified",
            AuditAction::AuditCheckpointsExported => "audit_checkpoints_exported",
            AuditAction::AuditSearched => "audit_searched",
            AuditAction::AuditExported => "audit_exported",
            AuditAction::AlertRaised => "alert_raised",
            AuditAction::AlertAcknowledged => "alert_acknowledged",
            AuditAction::AlertResolved => "alert_resolved",
            AuditAction::AccountLocked => "account_locked",
            AuditAction::AccountUnlocked => "account_unlocked",
            AuditAction::SessionsRevoked => "sessions_revoked",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::RoleDefined => "role_defined",
            AuditAction::RoleDeleted => "role_deleted",
            AuditAction::TeamChanged => "team_changed",
            AuditAction::ClientsReassigned => "clients_reassigned",
            AuditAction::ReassignmentRejected => "reassignment_rejected",
            AuditAction::KekRotated => "kek_rotated",
            AuditAction::SecurityPostureChecked => "security_posture_checked",
            AuditAction::KeysRewrapped => "keys_rewrapped",
            AuditAction::KekRetired => "kek_retired",
            AuditAction::ReencryptionStarted => "reencryption_started",
            AuditAction::ReencryptionFinished => "reencryption_finished",
            AuditAction::BlindIndexRotationStarted => "blind_index_rotation_started",
            AuditAction::BlindIndexRotationFinished => "blind_index_rotation_finished",
            AuditAction::DataKeysReplaced => "data_keys_replaced",
            AuditAction::ReviewStarted => "review_started",
            AuditAction::ReviewDecided => "review_decided",
            AuditAction::HoneytokenPlanted => "honeytoken_planted",
            AuditAction::AuditArchived => "audit_archived",
            AuditAction::AuditRetentionChanged => "audit_retention_changed",
            AuditAction::RecordCreated => "record_created",
            AuditAction::RecordUpdated => "record_updated",
            AuditAction::RecordDeleted => "record_deleted",
            AuditAction::RecordSensitiveRead => "record_sensitive_read",
            AuditAction::RecordSearched => "record_searched",
            AuditAction::ClientsExported => "clients_exported",
            AuditAction::ClientsImported => "clients_imported",
            AuditAction::ClientAssigned => "client_assigned",
            AuditAction::DocumentDownloaded => "document_downloaded",
            AuditAction::CustodyCheckedOut => "custody_checked_out",
            AuditAction::CustodyCheckedIn => "custody_checked_in",
            AuditAction::FilingTasksGenerated => "filing_tasks_generated",
            AuditAction::LeadCreated => "lead_created",
            AuditAction::LeadUpdated => "lead_updated",
            AuditAction::LeadConverted => "lead_converted",
            AuditAction::EngagementChanged => "engagement_changed",
            AuditAction::LoginSecondFactorPending => "login_second_factor_pending",
            AuditAction::MfaEnrolmentStarted => "mfa_enrolment_started",
            AuditAction::MfaEnabled => "mfa_enabled",
            AuditAction::MfaReset => "mfa_reset",
            AuditAction::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            AuditAction::StepUp => "step_up",
            AuditAction::SecurityKeyRegistered => "security_key_registered",
            AuditAction::SecurityKeyRenamed => "security_key_renamed",
            AuditAction::SecurityKeyRemoved => "security_key_removed",
            AuditAction::SecurityKeyCloneSuspected => "security_key_clone_suspected",
            AuditAction::SecondFactorCodeSent => "second_factor_code_sent",
            AuditAction::SessionRevoked => "session_revoked",
            AuditAction::BackupCreated => "backup_created",
            AuditAction::BackupVerified => "backup_verified",
            AuditAction::BackupRestored => "backup_restored",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::TokenUsed => "token_used",
            AuditAction::ErasureReapplied => "erasure_reapplied",
            AuditAction::BackupRun => "backup_run",
            AuditAction::RestoreTested => "restore_tested",
            AuditAction::DrillRun => "drill_run",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Who acted. `name` is a username, or `cli:<os user>` / `system` for actions without a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub name: String,
    /// A short, non-secret reference to the session (a prefix of its hash), never the session id.
    pub session_ref: Option<String>,
    pub source: Option<String>,
    /// The client software as it named itself (User-Agent), shortened; never trusted, only
    /// recorded.
    pub device: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            user_id: None,
            name: "system".into(),
            session_ref: None,
            source: None,
            device: None,
        }
    }

    pub fn cli(os_user: &str) -> Self {
        Actor {
            user_id: None,
            name: format!("cli:{os_user}"),
            session_ref: None,
            source: Some("local".into()),
            device: None,
        }
    }
}

/// One audit record. Field *names* only — a sensitive value never enters an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: uuid::Uuid,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    pub actor: Actor,
    pub action: AuditAction,
    pub resource: Option<&'static str>,
    pub record_id: Option<String>,
    pub fields: Vec<&'static str>,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    /// A short, non-sensitive explanation (e.g. why access was denied).
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(at_ms: i64, actor: Actor, action: AuditAction, outcome: Outcome) -> Self {
        AuditEvent {
            // Time-ordered, so the unique index on ids grows at its right edge.
            id: uuid::Uuid::now_v7(),
            at_ms,
            actor,
            action,
            resource: None,
            record_id: None,
            fields: Vec::new(),
            outcome,
            request_id: None,
            detail: None,
        }
    }

    pub fn on(mut self, resource: &'static str, record_id: impl ToString) -> Self {
        self.resource = Some(resource);
        self.record_id = Some(record_id.to_string());
        self
    }

    pub fn fields(mut self, fields: &[&'static str]) -> Self {
        self.fields = fields.to_vec();
        self
    }

    pub fn request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn fields_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_else(|_| "[]".into())
    }
}

/// A stored event as read back, for investigation, export and archives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub at_ms: i64,
    pub actor_user_id: Option<String>,
    pub actor_name: String,
    pub session_ref: Option<String>,
    pub source: Option<String>,
    pub device: Option<String>,
    pub action: String,
    pub resource: Option<String>,
    pub record_id: Option<String>,
    pub fields: String,
    pub outcome: String,
    pub request_id: Option<String>,
    pub detail: Option<String>,
    /// The chain link of the previous event (32 bytes).
    #[serde(with = "hex_serde")]
    pub prev_hash: Vec<u8>,
    /// HMAC-SHA256 of this event with `prev_hash`, under the audit chain key (32 bytes).
    #[serde(with = "hex_serde")]
    pub hash: Vec<u8>,
}

pub(crate) mod hex_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// How urgent an alert is; maps to syslog severities and chat-robot wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A security alert raised by a monitoring rule. Like events, it names people, records and
/// fields, never a sensitive value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: String,
    pub at_ms: i64,
    /// The rule that fired, e.g. `failed_login_burst`, `read_volume`, `honeytoken`.
    pub rule: String,
    pub severity: Severity,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub source: Option<String>,
    /// One line a person on call can act on.
    pub summary: String,
    /// The event that triggered it.
    pub event_seq: Option<i64>,
    /// What the product did about it: `alert`, `lock_account`, `revoke_sessions`, …
    pub responses: Vec<String>,
}

/// Where an alert stands in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(AlertStatus::Open),
            "acknowledged" => Some(AlertStatus::Acknowledged),
            "resolved" => Some(AlertStatus::Resolved),
            _ => None,
        }
    }
}

impl Severity {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// An alert as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    #[serde(flatten)]
    pub alert: Alert,
    pub status: AlertStatus,
    pub updated_at_ms: i64,
    pub updated_by: Option<String>,
}

/// Somewhere events and alerts go besides the database: a SIEM, a chat robot. Calls must not
/// block; a sink queues and delivers on its own.
pub trait SecuritySink: Send + Sync {
    fn event(&self, event: &StoredEvent);
    fn alert(&self, alert: &Alert);
}
