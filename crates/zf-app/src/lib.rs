//! The application: every use-case of the product as a function that takes the caller's
//! [`zf_policy::Grant`], does the crypto, writes through the [`zf_store::Store`] with its audit
//! event, and returns plain views. The HTTP server and the CLI are thin doors onto this crate.

mod audit;
pub mod backup;
mod blind_index;
mod clients;
mod clock;
pub mod crm;
pub mod data_keys;
pub mod erasure;
mod error;
pub mod identity;
pub mod keyring;
mod keys;
pub mod monitor;
pub mod posture;
pub mod reassignments;
pub mod reviews;

use std::sync::Arc;

use zf_audit::Actor;
use zf_crypto::MasterKey;
use zf_policy::Grant;
use zf_store::Store;

pub use clients::{
    ClientAssignment, ClientFilter, ClientPage, ClientView, IdNumberQuery, SensitiveValue,
};
pub use clock::{now_ms, Clock, SystemClock};
pub use error::AppError;
pub use identity::{LoginOutcome, PasswordPolicyError, SessionContext, SetupSecret};
pub use keys::Keys;

/// Settings the application needs; the CLI fills it from its layered configuration.
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub session_idle_timeout_ms: i64,
    pub session_absolute_timeout_ms: i64,
    /// The firm's name; passwords containing it are refused.
    pub firm_name: Option<String>,
    pub monitor: monitor::MonitorConfig,
    /// Days an audit event must be kept before it may be archived (at least 180).
    pub audit_retention_days: u32,
    /// Which addresses each role may work from; whose forwarding headers are believed.
    pub network: zf_policy::NetworkPolicy,
    /// Throttling and lockout of sign-ins.
    pub login: identity::LoginPolicy,
    /// Who must use a second factor, and how long one counts as fresh.
    pub mfa: zf_policy::MfaPolicy,
    /// Scheduled backups, their targets and retention, restore tests.
    pub backup: backup::BackupConfig,
    /// At most this many signed-in sessions per user; a new sign-in ends the oldest beyond it
    /// (0: no limit).
    pub max_sessions_per_user: u32,
    /// The password rules: the ASVS default or the 等保 profile.
    pub password: identity::PasswordPolicy,
    /// How long API tokens may live and how fast they may be used.
    pub api_tokens: identity::TokenPolicy,
    pub webauthn: identity::WebauthnConfig,
    /// One-time codes by e-mail or SMS: senders and the rules for codes.
    pub otp: identity::OtpConfig,
    /// The cipher suite a new deployment chooses, and when data keys are replaced.
    pub data_keys: data_keys::DataKeyPolicy,
    /// The rotation policy: the current KEK's maximum age in days (`[keys] max_age_days`).
    pub kek_max_age_days: u32,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            session_idle_timeout_ms: 30 * 60 * 1000,
            session_absolute_timeout_ms: 12 * 60 * 60 * 1000,
            firm_name: None,
            monitor: monitor::MonitorConfig::default(),
            audit_retention_days: 180,
            network: zf_policy::NetworkPolicy::default(),
            login: identity::LoginPolicy::default(),
            mfa: zf_policy::MfaPolicy::default(),
            backup: backup::BackupConfig::default(),
            max_sessions_per_user: 0,
            api_tokens: identity::TokenPolicy::default(),
            password: identity::PasswordPolicy::default(),
            webauthn: identity::WebauthnConfig::default(),
            otp: identity::OtpConfig::default(),
            data_keys: data_keys::DataKeyPolicy::default(),
            kek_max_age_days: keyring::KEK_MAX_AGE_DAYS,
        }
    }
}

/// Facts about the request that every audit event records.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub source: Option<String>,
    /// A short, non-secret reference to the caller's session.
    pub session_ref: Option<String>,
    /// The User-Agent the caller sent, shortened.
    pub device: Option<String>,
}

/// The application state shared by every request.
#[derive(Clone)]
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) config: Arc<AppConfig>,
    pub(crate) hasher: identity::Hasher,
    pub(crate) sinks: monitor::Sinks,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) token_rates: identity::TokenRates,
    /// Passkey sign-ins begun per source address this minute: beginning one is anonymous and
    /// writes a ceremony row.
    pub(crate) passkey_rates: identity::MinuteRates<String>,
    /// The erasure ledger's file copy (see [`erasure`]), when the instance has a data directory.
    pub(crate) erasure_ledger: Option<Arc<std::path::PathBuf>>,
    /// Held by a backup run or a restore test, so a node runs one at a time.
    pub(crate) backup_lock: Arc<tokio::sync::Mutex<()>>,
    /// The run started by hand on this node, while it runs.
    pub(crate) backup_running: Arc<std::sync::Mutex<Option<backup::RunningView>>>,
    /// This node's name — as a key-job runner and as the holder of scheduled tasks' leases —
    /// and the lock that keeps it to one key-job run at a time.
    pub(crate) key_job_runner: Arc<(String, tokio::sync::Mutex<()>)>,
    pub(crate) rp: Arc<zf_crypto::webauthn::RelyingParty>,
    /// Deliver one-time codes, one per channel configured.
    pub(crate) senders: identity::otp::Senders,
    /// What the posture check cannot see for itself (key provider, forwarding, certificate).
    pub(crate) deployment: Arc<posture::Deployment>,
}

impl App {
    /// Loads the system keys (creating them on first start) and prepares the application.
    pub async fn new(
        store: Arc<dyn Store>,
        master: &MasterKey,
        config: AppConfig,
    ) -> Result<Self, AppError> {
        Self::with_kek_source(
            store,
            zf_crypto::KekSource::Master(master.duplicate()),
            config,
        )
        .await
    }

    /// [`App::new`] with the KEKs from `source`: derived from a master key, or held in a
    /// PKCS#11 token that wraps and unwraps without the KEK ever entering this process.
    pub async fn with_kek_source(
        store: Arc<dyn Store>,
        source: zf_crypto::KekSource,
        config: AppConfig,
    ) -> Result<Self, AppError> {
        let rp = config
            .webauthn
            .relying_party()
            .map_err(|e| AppError::Invalid(format!("[webauthn]: {e}")))?;
        let senders = identity::otp::Senders::from_config(&config.otp)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let keys = Keys::load_from(store.as_ref(), source, config.data_keys.cipher_suite).await?;
        let days = config.audit_retention_days;
        let event = zf_audit::AuditEvent::new(
            now_ms(),
            Actor::system(),
            zf_audit::AuditAction::AuditRetentionChanged,
            zf_audit::Outcome::Success,
        )
        .detail(format!("{days} days"));
        store
            .audit_set_retention(i64::from(days) * 86_400_000, event)
            .await
            .map_err(|e| AppError::Invalid(format!("audit retention: {e}")))?;
        Ok(App {
            store,
            keys: Arc::new(keys),
            config: Arc::new(config),
            hasher: identity::Hasher::new(),
            sinks: monitor::Sinks::default(),
            clock: clock::system(),
            token_rates: identity::TokenRates::default(),
            passkey_rates: identity::MinuteRates::default(),
            erasure_ledger: None,
            backup_lock: Arc::default(),
            backup_running: Arc::default(),
            key_job_runner: Arc::new((
                format!("node-{}", uuid::Uuid::new_v4()),
                tokio::sync::Mutex::new(()),
            )),
            rp: Arc::new(rp),
            senders,
            deployment: Arc::default(),
        })
    }

    /// The same application reading time from `clock`; for tests that must move past a
    /// window without waiting.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same application delivering one-time codes through `senders` (an SMS gateway
    /// built outside the configuration).
    pub fn with_code_senders(mut self, senders: identity::otp::Senders) -> Self {
        self.senders = senders;
        self
    }

    /// The time as the identity use-cases see it.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Takes a scheduled task's lease (`backups`, `access_review`) for this node: several
    /// nodes run the schedule, the holder does the task. The lease is short and renewed in the
    /// background while held, so a node that dies (or is restarted) mid-task frees the task
    /// within minutes; `None` when another node holds it.
    pub(crate) async fn schedule_lease(
        &self,
        task: &'static str,
    ) -> Result<Option<HeldLease>, AppError> {
        let now = self.now_ms();
        let owner = self.key_job_runner.0.clone();
        if !self
            .store
            .schedule_lease_take(task, &owner, now, now + LEASE_MS)
            .await?
        {
            return Ok(None);
        }
        let app = self.clone();
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_RENEW).await;
                let until = app.now_ms() + LEASE_MS;
                match app.store.schedule_lease_renew(task, &owner, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(task, "lost the lease of a running task");
                        break;
                    }
                    Err(e) => tracing::error!(task, error = %e, "cannot renew a task's lease"),
                }
            }
        });
        Ok(Some(HeldLease {
            app: self.clone(),
            task,
            renewer,
        }))
    }

    /// Where this node's KEKs come from (a master key or a token).
    pub fn kek_source(&self) -> &zf_crypto::KekSource {
        self.keys.kek_source()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }
}

/// How long a scheduled task's lease lasts without renewal, and how often it is renewed.
const LEASE_MS: i64 = 10 * 60_000;
const LEASE_RENEW: std::time::Duration = std::time::Duration::from_secs(120);

/// A scheduled task's lease held by this node, renewed until it is released or dropped (a
/// dropped lease is no longer renewed and lapses within [`LEASE_MS`]).
pub(crate) struct HeldLease {
    app: App,
    task: &'static str,
    renewer: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    pub(crate) async fn release(self) -> Result<(), AppError> {
        self.renewer.abort();
        Ok(self
            .app
            .store
            .schedule_lease_release(self.task, &self.app.key_job_runner.0)
            .await?)
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// The audit actor for a granted request.
pub(crate) fn actor(grant: &Grant, meta: &RequestMeta) -> Actor {
    match grant.principal() {
        Some(p) => Actor {
            user_id: Some(p.user_id),
            name: p.username.as_str().to_owned(),
            session_ref: meta.session_ref.clone(),
            source: meta.source.clone(),
            device: meta.device.clone(),
        },
        None => Actor {
            user_id: None,
            name: "anonymous".into(),
            session_ref: None,
            source: meta.source.clone(),
            device: meta.device.clone(),
        },
    }
}
