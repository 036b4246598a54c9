//! Security monitoring: rules evaluated over the audit log as events arrive, alerts, and the
//! automatic responses (lock the account, end its sessions).
//!
//! Every node tails the log from a shared cursor. Rules only read the log through its indexes,
//! so their state is the log itself and any node can evaluate them. Alerts carry a
//! deduplication key (rule, subject, time window), so two nodes evaluating the same events raise
//! one alert; the node that stores it applies the responses and forwards it to the sinks.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use zf_audit::{
    Actor, Alert, AlertRecord, AlertStatus, AuditAction, AuditEvent, Outcome, SecuritySink,
    Severity, StoredEvent,
};
use zf_domain::Username;
use zf_policy::Grant;
use zf_store::AuditQuery;

use crate::{now_ms, App, AppError, RequestMeta};

/// What a rule does when it fires, besides recording the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Forward the alert to the configured sinks (syslog, webhooks). Always implied.
    Alert,
    /// Disable the account and end its sessions; the next request is refused.
    LockAccount,
    /// End every session of the account; it may sign in again.
    RevokeSessions,
}

impl Response {
    fn as_str(self) -> &'static str {
        match self {
            Response::Alert => "alert",
            Response::LockAccount => "lock_account",
            Response::RevokeSessions => "revoke_sessions",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailedLogins {
    pub enabled: bool,
    /// Failed sign-ins for one username, or from one address, within the window.
    pub threshold: u64,
    pub window_minutes: i64,
    pub respond: Vec<Response>,
}

impl Default for FailedLogins {
    fn default() -> Self {
        FailedLogins {
            enabled: true,
            threshold: 10,
            window_minutes: 10,
            respond: vec![Response::Alert],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadVolume {
    pub enabled: bool,
    pub window_minutes: i64,
    /// Below this many records in a window nothing is unusual, whatever the baseline.
    pub min_records: u64,
    /// How many times the user's own average per window counts as "far more".
    pub factor: u64,
    pub baseline_days: i64,
    pub respond: Vec<Response>,
}

impl Default for ReadVolume {
    fn default() -> Self {
        ReadVolume {
            enabled: true,
            window_minutes: 60,
            min_records: 200,
            factor: 5,
            baseline_days: 30,
            respond: vec![Response::Alert, Response::LockAccount],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Honeytoken {
    pub enabled: bool,
    pub respond: Vec<Response>,
}

impl Default for Honeytoken {
    fn default() -> Self {
        Honeytoken {
            enabled: true,
            respond: vec![Response::Alert, Response::RevokeSessions],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewSource {
    pub enabled: bool,
    pub respond: Vec<Response>,
}

impl Default for NewSource {
    fn default() -> Self {
        NewSource {
            enabled: true,
            respond: vec![Response::Alert],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffHours {
    pub enabled: bool,
    /// Working hours in local time, [start, end).
    pub start_hour: i64,
    pub end_hour: i64,
    /// Offset of local time from UTC (China: 8).
    pub utc_offset_hours: i64,
    pub respond: Vec<Response>,
}

impl Default for OffHours {
    fn default() -> Self {
        OffHours {
            enabled: false,
            start_hour: 8,
            end_hour: 20,
            utc_offset_hours: 8,
            respond: vec![Response::Alert],
        }
    }
}

/// The rules, each configurable under `[monitor.<rule>]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Accounts unused this many days are disabled (0 turns it off).
    pub dormant_days: u32,
    /// An access review starts this many days after the last (0 turns it off).
    pub access_review_every_days: u32,
    /// Days reviewers have to answer before unanswered lines raise an alert.
    pub access_review_due_days: u32,
    pub failed_logins: FailedLogins,
    pub read_volume: ReadVolume,
    pub honeytoken: Honeytoken,
    pub new_source: NewSource,
    pub off_hours: OffHours,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            dormant_days: 90,
            access_review_every_days: 90,
            access_review_due_days: 14,
            failed_logins: FailedLogins::default(),
            read_volume: ReadVolume::default(),
            honeytoken: Honeytoken::default(),
            new_source: NewSource::default(),
            off_hours: OffHours::default(),
        }
    }
}

/// The sinks alerts and events are forwarded to; filled at start-up from configuration.
#[derive(Clone, Default)]
pub struct Sinks(Arc<RwLock<Vec<Arc<dyn SecuritySink>>>>);

impl Sinks {
    pub fn add(&self, sink: Arc<dyn SecuritySink>) {
        if let Ok(mut all) = self.0.write() {
            all.push(sink);
        }
    }

    fn each(&self, f: impl Fn(&dyn SecuritySink)) {
        if let Ok(all) = self.0.read() {
            for s in all.iter() {
                f(s.as_ref());
            }
        }
    }
}

const MINUTE: i64 = 60_000;
/// Events read per tick; a backlog drains over several ticks.
const BATCH: u32 = 2_000;
const SENSITIVE_READS: &[&str] = &[
    "client_sensitive_read",
    "client_searched",
    "record_sensitive_read",
    "record_searched",
    "document_downloaded",
    "clients_exported",
];

/// A rule's verdict before it is stored.
pub(crate) struct Finding {
    pub(crate) rule: &'static str,
    pub(crate) severity: Severity,
    pub(crate) dedup_key: String,
    pub(crate) username: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) summary: String,
    pub(crate) event_seq: i64,
    pub(crate) respond: Vec<Response>,
}

fn monitor_actor() -> Actor {
    Actor {
        user_id: None,
        name: "monitor".into(),
        session_ref: None,
        source: None,
        device: None,
    }
}

impl App {
    pub fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    /// Evaluates the rules over the events that arrived since the last tick (on any node),
    /// raises alerts and applies responses. Returns the alerts this call raised.
    pub async fn monitor_tick(&self) -> Result<Vec<Alert>, AppError> {
        let from = self.store.monitor_position().await?;
        let head = self.store.audit_head().await?.seq;
        if head <= from {
            return Ok(Vec::new());
        }
        let events: Vec<StoredEvent> = self
            .store
            .audit_events(from, BATCH)
            .await?
            .into_iter()
            .filter(|e| e.seq <= head)
            .collect();
        let Some(to) = events.last().map(|e| e.seq) else {
            return Ok(Vec::new());
        };
        let findings = self.evaluate(&events).await?;
        let mut raised = Vec::new();
        for f in findings {
            if let Some(alert) = self.raise(f).await? {
                raised.push(alert);
            }
        }
        // Whoever moves the cursor forwards the events, so each reaches the SIEM once.
        if self.store.monitor_advance(from, to).await? {
            for e in &events {
                self.sinks.each(|s| s.event(e));
            }
        }
        Ok(raised)
    }

    async fn evaluate(&self, events: &[StoredEvent]) -> Result<Vec<Finding>, AppError> {
        let rules = &self.config.monitor;
        let mut out = Vec::new();
        let honeytokens: HashSet<String> = if rules.honeytoken.enabled {
            self.store.honeytokens().await?.into_iter().collect()
        } else {
            HashSet::new()
        };
        // One volume check per user per batch, at their latest read.
        let mut readers: BTreeMap<String, &StoredEvent> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e.actor_user_id.is_some() || e.action == "login")
        {
            if rules.failed_logins.enabled && e.action == "login" && e.outcome == "failed" {
                out.extend(self.failed_logins(e).await?);
            }
            if rules.new_source.enabled && e.action == "login" && e.outcome == "success" {
                out.extend(self.new_source(e).await?);
            }
            if rules.honeytoken.enabled && e.resource.as_deref() == Some("clients") {
                if let Some(record) = e.record_id.as_deref().filter(|r| honeytokens.contains(*r)) {
                    out.push(Finding {
                        rule: "honeytoken",
                        severity: Severity::Critical,
                        dedup_key: format!(
                            "honeytoken:{}:{record}:{}",
                            e.actor_name,
                            e.at_ms / (60 * MINUTE)
                        ),
                        username: Some(e.actor_name.clone()),
                        user_id: e.actor_user_id.clone(),
                        source: e.source.clone(),
                        summary: format!(
                            "诱饵客户被访问 / decoy client {record} touched by {} ({})",
                            e.actor_name, e.action
                        ),
                        event_seq: e.seq,
                        respond: rules.honeytoken.respond.clone(),
                    });
                }
            }
            if rules.read_volume.enabled && SENSITIVE_READS.contains(&e.action.as_str()) {
                readers.insert(e.actor_name.clone(), e);
            }
            if rules.off_hours.enabled && e.actor_user_id.is_some() && e.action != "login" {
                let local_hour =
                    (e.at_ms / (60 * MINUTE) + rules.off_hours.utc_offset_hours).rem_euclid(24);
                if local_hour < rules.off_hours.start_hour || local_hour >= rules.off_hours.end_hour
                {
                    let day = (e.at_ms / MINUTE / 60 + rules.off_hours.utc_offset_hours) / 24;
                    out.push(Finding {
                        rule: "off_hours",
                        severity: Severity::Medium,
                        dedup_key: format!("off_hours:{}:{day}", e.actor_name),
                        username: Some(e.actor_name.clone()),
                        user_id: e.actor_user_id.clone(),
                        source: e.source.clone(),
                        summary: format!(
                            "非工作时间访问 / access outside working hours by {} ({})",
                            e.actor_name, e.action
                        ),
                        event_seq: e.seq,
                        respond: rules.off_hours.respond.clone(),
                    });
                }
            }
        }
        for e in readers.values() {
            out.extend(self.read_volume(e).await?);
        }
        Ok(out)
    }

    async fn failed_logins(&self, e: &StoredEvent) -> Result<Vec<Finding>, AppError> {
        let rule = &self.config.monitor.failed_logins;
        let window = rule.window_minutes.max(1) * MINUTE;
        let base = AuditQuery {
            action: Some("login".into()),
            outcome: Some("failed".into()),
            from_ms: Some(e.at_ms - window),
            to_ms: Some(e.at_ms + 1),
            ..AuditQuery::default()
        };
        let mut out = Vec::new();
        let by_user = self
            .store
            .audit_count(&AuditQuery {
                actor: Some(e.actor_name.clone()),
                ..base.clone()
            })
            .await?;
        if by_user >= rule.threshold {
            out.push(Finding {
                rule: "failed_login_burst",
                severity: Severity::High,
                dedup_key: format!("failed_logins:user:{}:{}", e.actor_name, e.at_ms / window),
                username: Some(e.actor_name.clone()),
                user_id: e.actor_user_id.clone(),
                source: e.source.clone(),
                summary: format!(
                    "短时间内大量登录失败 / {by_user} failed sign-ins for {} within {} minutes",
                    e.actor_name, rule.window_minutes
                ),
                event_seq: e.seq,
                respond: rule.respond.clone(),
            });
        }
        if let Some(source) = &e.source {
            let by_source = self
                .store
                .audit_count(&AuditQuery {
                    source: Some(source.clone()),
                    ..base
                })
                .await?;
            if by_source >= rule.threshold {
                out.push(Finding {
                    rule: "failed_login_burst",
                    severity: Severity::High,
                    dedup_key: format!("failed_logins:source:{source}:{}", e.at_ms / window),
                    username: None,
                    user_id: None,
                    source: Some(source.clone()),
                    summary: format!("同一地址大量登录失败 / {by_source} failed sign-ins from {source} within {} minutes", rule.window_minutes),
                    event_seq: e.seq,
                    // An address is not an account: only the alert applies.
                    respond: vec![Response::Alert],
                });
            }
        }
        Ok(out)
    }

    /// A successful sign-in from an address, or with a device, this user never signed in from
    /// before (their very first sign-in excepted).
    async fn new_source(&self, e: &StoredEvent) -> Result<Vec<Finding>, AppError> {
        let logins = AuditQuery {
            actor: Some(e.actor_name.clone()),
            action: Some("login".into()),
            outcome: Some("success".into()),
            to_ms: Some(e.at_ms),
            ..AuditQuery::default()
        };
        if self.store.audit_count(&logins).await? == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let respond = &self.config.monitor.new_source.respond;
        if let Some(source) = &e.source {
            let q = AuditQuery {
                source: Some(source.clone()),
                ..logins.clone()
            };
            if self.store.audit_count(&q).await? == 0 {
                out.push(Finding {
                    rule: "new_source",
                    severity: Severity::Low,
                    dedup_key: format!("new_source:{}:{source}", e.actor_name),
                    username: Some(e.actor_name.clone()),
                    user_id: e.actor_user_id.clone(),
                    source: Some(source.clone()),
                    summary: format!(
                        "新地址登录 / {} signed in from a new address {source}",
                        e.actor_name
                    ),
                    event_seq: e.seq,
                    respond: respond.clone(),
                });
            }
        }
        if let Some(device) = &e.device {
            let q = AuditQuery {
                device: Some(device.clone()),
                ..logins
            };
            if self.store.audit_count(&q).await? == 0 {
                let short: String = device.chars().take(60).collect();
                out.push(Finding {
                    rule: "new_device",
                    severity: Severity::Low,
                    dedup_key: format!("new_device:{}:{device}", e.actor_name),
                    username: Some(e.actor_name.clone()),
                    user_id: e.actor_user_id.clone(),
                    source: e.source.clone(),
                    summary: format!(
                        "新设备登录 / {} signed in with a new device ({short})",
                        e.actor_name
                    ),
                    event_seq: e.seq,
                    respond: respond.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn read_volume(&self, e: &StoredEvent) -> Result<Vec<Finding>, AppError> {
        let rule = &self.config.monitor.read_volume;
        let window = rule.window_minutes.max(1) * MINUTE;
        let mut counted = 0;
        for action in SENSITIVE_READS {
            counted += self
                .store
                .audit_count(&AuditQuery {
                    actor: Some(e.actor_name.clone()),
                    action: Some((*action).into()),
                    from_ms: Some(e.at_ms - window),
                    to_ms: Some(e.at_ms + 1),
                    ..AuditQuery::default()
                })
                .await?;
        }
        if counted < rule.min_records {
            return Ok(Vec::new());
        }
        let span = rule.baseline_days.max(1) * 24 * 60 * MINUTE;
        let mut history = 0;
        for action in SENSITIVE_READS {
            history += self
                .store
                .audit_count(&AuditQuery {
                    actor: Some(e.actor_name.clone()),
                    action: Some((*action).into()),
                    from_ms: Some(e.at_ms - window - span),
                    to_ms: Some(e.at_ms - window),
                    ..AuditQuery::default()
                })
                .await?;
        }
        let windows = (span / window).max(1) as u64;
        let baseline = history.div_ceil(windows).max(1);
        if counted < rule.factor.saturating_mul(baseline) {
            return Ok(Vec::new());
        }
        Ok(vec![Finding {
            rule: "read_volume",
            severity: Severity::High,
            dedup_key: format!("read_volume:{}:{}", e.actor_name, e.at_ms / window),
            username: Some(e.actor_name.clone()),
            user_id: e.actor_user_id.clone(),
            source: e.source.clone(),
            summary: format!(
                "异常大量读取客户敏感数据 / {} read {counted} sensitive records within {} minutes (own baseline {baseline})",
                e.actor_name, rule.window_minutes
            ),
            event_seq: e.seq,
            respond: rule.respond.clone(),
        }])
    }

    /// Stores the alert; if this call stored it, applies its responses and forwards it.
    pub(crate) async fn raise(&self, f: Finding) -> Result<Option<Alert>, AppError> {
        let now = now_ms();
        let mut responses: Vec<String> = vec!["alert".into()];
        responses.extend(
            f.respond
                .iter()
                .filter(|r| **r != Response::Alert)
                .map(|r| r.as_str().to_owned()),
        );
        let alert = Alert {
            id: uuid::Uuid::new_v4().to_string(),
            at_ms: now,
            rule: f.rule.to_owned(),
            severity: f.severity,
            user_id: f.user_id.clone(),
            username: f.username.clone(),
            source: f.source.clone(),
            summary: f.summary.clone(),
            event_seq: Some(f.event_seq).filter(|s| *s > 0),
            responses,
        };
        let event = AuditEvent::new(
            now,
            monitor_actor(),
            AuditAction::AlertRaised,
            Outcome::Success,
        )
        .on("alert", &alert.id)
        .detail(format!(
            "{} ({}) after event #{}",
            f.rule,
            f.severity.as_str(),
            f.event_seq
        ));
        if !self
            .store
            .alert_raise(alert.clone(), f.dedup_key, event)
            .await?
        {
            return Ok(None);
        }
        tracing::warn!(rule = f.rule, severity = f.severity.as_str(), user = ?f.username, "security alert");
        let account = f.username.as_deref().and_then(|u| Username::parse(u).ok());
        for r in &f.respond {
            let Some(user) = &account else { break };
            match r {
                Response::Alert => {}
                Response::LockAccount => {
                    let event = AuditEvent::new(
                        now_ms(),
                        monitor_actor(),
                        AuditAction::AccountLocked,
                        Outcome::Success,
                    )
                    .on("user", user.as_str())
                    .detail(format!("alert {}", alert.id));
                    match self.store.user_set_disabled(user, true, event).await {
                        Ok(()) | Err(zf_store::StoreError::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Response::RevokeSessions => {
                    let event = AuditEvent::new(
                        now_ms(),
                        monitor_actor(),
                        AuditAction::SessionsRevoked,
                        Outcome::Success,
                    )
                    .on("user", user.as_str())
                    .detail(format!("alert {}", alert.id));
                    self.store.user_revoke_sessions(user, event).await?;
                }
            }
        }
        self.sinks.each(|s| s.alert(&alert));
        Ok(Some(alert))
    }

    /// Disables every account unused for `dormant_days` (default 90): no sign-in since then, or
    /// never since it was created. Each is audited; the operator re-enables with `user unlock`.
    pub async fn disable_dormant_accounts(&self) -> Result<Vec<Username>, AppError> {
        let days = self.config.monitor.dormant_days;
        if days == 0 {
            return Ok(Vec::new());
        }
        let before = now_ms() - i64::from(days) * 24 * 60 * MINUTE;
        let dormant = self.store.users_dormant(before).await?;
        for user in &dormant {
            let event = AuditEvent::new(
                now_ms(),
                monitor_actor(),
                AuditAction::AccountLocked,
                Outcome::Success,
            )
            .on("user", user.as_str())
            .detail(format!("unused for {days} days"));
            match self.store.user_set_disabled(user, true, event).await {
                Ok(()) | Err(zf_store::StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(dormant)
    }

    /// Raises one alert per campaign per day while lines stay unanswered past the due date.
    pub async fn review_escalations(&self) -> Result<Vec<Alert>, AppError> {
        let mut raised = Vec::new();
        let now = now_ms();
        let campaigns = self.store.review_campaigns().await?;
        for (c, open) in self.reviews_overdue(&campaigns, now).await? {
            let finding = Finding {
                rule: "access_review_overdue",
                severity: Severity::Medium,
                dedup_key: format!("review_overdue:{}:{}", c.id, now / (24 * 60 * MINUTE)),
                username: None,
                user_id: None,
                source: None,
                summary: format!(
                    "权限复核逾期 / access review {} has {open} unanswered lines past its due date",
                    c.id
                ),
                event_seq: 0,
                respond: vec![Response::Alert],
            };
            if let Some(alert) = self.raise(finding).await? {
                raised.push(alert);
            }
        }
        Ok(raised)
    }

    /// The campaigns past their due date with lines still unanswered, and how many.
    pub(crate) async fn reviews_overdue<'a>(
        &self,
        campaigns: &'a [zf_store::ReviewCampaign],
        now: i64,
    ) -> Result<Vec<(&'a zf_store::ReviewCampaign, usize)>, AppError> {
        let mut out = Vec::new();
        for c in campaigns.iter().filter(|c| now > c.due_at_ms) {
            let open = self
                .store
                .review_lines(&c.id)
                .await?
                .iter()
                .filter(|l| l.decision.is_none())
                .count();
            if open > 0 {
                out.push((c, open));
            }
        }
        Ok(out)
    }

    /// The alert console's list.
    pub async fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, AppError> {
        Ok(self.store.alerts(status, limit.clamp(1, 500)).await?)
    }

    /// Acknowledges or resolves an alert; audited.
    pub async fn alert_update(
        &self,
        grant: &Grant,
        id: &str,
        status: AlertStatus,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let actor = crate::actor(grant, meta);
        let action = match status {
            AlertStatus::Resolved => AuditAction::AlertResolved,
            AlertStatus::Acknowledged | AlertStatus::Open => AuditAction::AlertAcknowledged,
        };
        let event = AuditEvent::new(now_ms(), actor.clone(), action, Outcome::Success)
            .on("alert", id)
            .request(meta.request_id.clone());
        Ok(self
            .store
            .alert_set_status(id, status, &actor.name, now_ms(), event)
            .await?)
    }

    /// Re-enables an account locked by a rule (or by hand), from the operator's command line.
    pub async fn unlock_user(&self, username: &Username, operator: Actor) -> Result<(), AppError> {
        let event = AuditEvent::new(
            now_ms(),
            operator,
            AuditAction::AccountUnlocked,
            Outcome::Success,
        )
        .on("user", username.as_str());
        Ok(self.store.user_set_disabled(username, false, event).await?)
    }

    /// Marks an existing client as a decoy: any access to it raises a critical alert.
    pub async fn plant_honeytoken(
        &self,
        client: zf_domain::ClientId,
        operator: Actor,
    ) -> Result<(), AppError> {
        let event = AuditEvent::new(
            now_ms(),
            operator,
            AuditAction::HoneytokenPlanted,
            Outcome::Success,
        )
        .on("clients", client);
        Ok(self.store.honeytoken_add(client, now_ms(), event).await?)
    }
}
