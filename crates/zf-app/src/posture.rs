//! The security posture check: the questions a security officer — and the firm's 等保 assessor —
//! asks of a deployment, each answered from its live state: the KEK's age against the rotation
//! policy, where the master key is kept, data keys worn out or a key job stalled, who must use a
//! second factor and who has none, sign-in lockout, session timeouts, administrators confined to
//! their networks, backups, restore tests and drills on time, access reviews answered, the
//! audit chain intact, alerts dealt with, events forwarded off the machine, the TLS certificate
//! valid, dormant accounts disabled.
//!
//! `zhangfang posture`, `GET /api/v1/security/posture` and the `/posture` page show it; the
//! monitoring loop runs it every hour and raises one alert a day for each failing check, so a
//! backup that stopped or a key past its age is reported without anybody looking.

use serde::Serialize;
use zf_audit::{AlertStatus, AuditAction, AuditEvent, Outcome, Severity};
use zf_policy::{Grant, Role};
use zf_store::{HolderFilter, KeyHolder, KeyJobState};

use crate::monitor::{Finding, Response};
use crate::{App, AppError, RequestMeta};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A warning this many days before a KEK reaches its maximum age or a certificate expires.
const NOTICE_DAYS: i64 = 30;
/// A running key job that has written nothing for this long is stalled.
const STALLED_MS: i64 = 10 * 60_000;
/// The rule name of the alerts a failing check raises.
const POSTURE_RULE: &str = "security_posture";
/// A daily backup older than this means at least one scheduled run did not succeed.
const BACKUP_STALE_MS: i64 = 2 * DAY_MS;

/// How a check came out; the posture is the worst of its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One question and its answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// A stable name: `kek_age`, `key_custody`, `database_link`, `data_keys`, `mfa_policy`,
    /// `mfa_enrolment`, `sign_in_lockout`, `session_timeouts`, `admin_networks`, `api_tokens`,
    /// `erasure_requests`,
    /// `backups`, `restore_tests`, `drills`, `access_reviews`, `audit_chain`, `alerts`,
    /// `log_forwarding`, `tls_certificate`, `dormant_accounts`.
    pub id: String,
    /// What is asked, in Chinese and English.
    pub title: String,
    pub status: Status,
    /// What was found, with the figures behind the verdict.
    pub summary: String,
}

/// Every check, and the worst of them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Posture {
    pub checked_at: i64,
    pub status: Status,
    pub failed: usize,
    pub warnings: usize,
    pub checks: Vec<Check>,
}

impl Posture {
    fn of(checked_at: i64, checks: Vec<Check>) -> Posture {
        let count = |s| checks.iter().filter(|c| c.status == s).count();
        Posture {
            checked_at,
            status: checks
                .iter()
                .map(|c| c.status)
                .max()
                .unwrap_or(Status::Pass),
            failed: count(Status::Fail),
            warnings: count(Status::Warn),
            checks,
        }
    }
}

/// What the application cannot see of its own deployment; the binary that starts it tells it.
#[derive(Clone, Debug, Default)]
pub struct Deployment {
    /// Where the master key or the KEKs come from: `file`, `env`, `passphrase`, `pkcs11`
    /// (empty: not told).
    pub key_provider: String,
    /// Where audit events and alerts are forwarded (syslog, webhooks), described.
    pub forwarding: Vec<String>,
    /// The certificate the server presents, when there is one.
    pub certificate: Option<Certificate>,
}

/// The facts of a TLS certificate that the posture judges.
#[derive(Clone, Debug)]
pub struct Certificate {
    pub subject: String,
    pub not_after_ms: i64,
    /// Issued by itself: no browser can verify it.
    pub self_signed: bool,
}

fn check(id: &str, title: &str, status: Status, summary: impl Into<String>) -> Check {
    Check {
        id: id.to_owned(),
        title: title.to_owned(),
        status,
        summary: summary.into(),
    }
}

fn days(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

fn date(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A short list of names: the first few, and how many more.
fn some_of(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The current KEK's age against the rotation policy.
pub fn kek_age(version: u32, age_days: i64, max_days: i64) -> Check {
    let title = "密钥轮换 / KEK rotation";
    let status = if age_days > max_days {
        Status::Fail
    } else if age_days > max_days - NOTICE_DAYS.min(max_days / 2) {
        Status::Warn
    } else {
        Status::Pass
    };
    let verdict = match status {
        Status::Fail => "overdue: run `zhangfang keys rotate`",
        Status::Warn => "due soon",
        Status::Pass => "within the policy",
    };
    check(
        "kek_age",
        title,
        status,
        format!("KEK v{version} is {age_days} days old; the policy allows {max_days} ({verdict})"),
    )
}

/// Where the master key is kept.
pub fn key_custody(provider: &str) -> Option<Check> {
    let title = "主密钥保管 / master key custody";
    let (status, summary) = match provider {
        "pkcs11" => (
            Status::Pass,
            "KEKs are held in a PKCS#11 token; wrapping happens inside it and the KEK never enters this process",
        ),
        "passphrase" => (
            Status::Pass,
            "the master key is derived from a passphrase asked at start and stored nowhere",
        ),
        "env" => (
            Status::Pass,
            "the master key comes from ZHANGFANG_MASTER_KEY and is not stored by Zhangfang",
        ),
        "file" => (
            Status::Warn,
            "the master key is a file beside the data: whoever copies the data directory whole can read it; \
             use a passphrase or a PKCS#11 token, or keep the file on separate storage",
        ),
        _ => return None,
    };
    Some(check("key_custody", title, status, summary))
}

/// How the application reaches its database server.
pub fn database_link(link: &zf_store::DatabaseLink) -> Check {
    let title = "数据库传输加密 / database connection";
    let server = &link.server;
    let (status, summary) = match (&link.tls, link.verified, link.local) {
        (Some(tls), true, _) => (
            Status::Pass,
            format!("PostgreSQL at {server} over {tls}, the server's certificate and name verified"),
        ),
        (None, _, true) => (
            Status::Pass,
            format!("PostgreSQL on this machine ({server}): the connection does not leave it"),
        ),
        (None, _, false) => (
            Status::Fail,
            format!(
                "PostgreSQL at {server} is reached across the network in the clear (sslmode=disable): \
                 the audit log, user names and sessions can be read on the way; use \
                 sslmode=verify-full&sslrootcert=…"
            ),
        ),
        (Some(tls), false, _) => (
            Status::Warn,
            format!("PostgreSQL at {server} over {tls}, but the server's certificate was not verified"),
        ),
    };
    check("database_link", title, status, summary)
}

/// The certificate's validity as of `now_ms`.
pub fn tls_certificate(c: &Certificate, now_ms: i64) -> Check {
    let title = "TLS 证书 / TLS certificate";
    let left = days(c.not_after_ms - now_ms);
    let until = date(c.not_after_ms);
    let (status, summary) = if c.not_after_ms <= now_ms {
        (
            Status::Fail,
            format!("the certificate for {} expired on {until}", c.subject),
        )
    } else if left < NOTICE_DAYS {
        (
            Status::Warn,
            format!(
                "the certificate for {} expires on {until}, in {left} days",
                c.subject
            ),
        )
    } else if c.self_signed {
        (
            Status::Warn,
            format!(
                "the certificate for {} is self-signed (valid until {until}): browsers cannot verify \
                 the server; install one issued for the firm's domain (tls_cert, tls_key)",
                c.subject
            ),
        )
    } else {
        (
            Status::Pass,
            format!("the certificate for {} is valid until {until}", c.subject),
        )
    };
    check("tls_certificate", title, status, summary)
}

/// Whether the second-factor policy covers every role it must.
pub fn mfa_policy(policy: &zf_policy::MfaPolicy) -> Check {
    let title = "双因素策略 / second-factor policy";
    let must: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| zf_policy::MfaPolicy::should_require(*r))
        .collect();
    let missing: Vec<String> = must
        .iter()
        .filter(|r| !policy.requires(**r))
        .map(|r| r.as_str().to_owned())
        .collect();
    let codes: Vec<String> = must
        .iter()
        .filter(|r| r.is_administrator() && policy.accepts_codes(**r))
        .map(|r| r.as_str().to_owned())
        .collect();
    if !missing.is_empty() {
        return check(
            "mfa_policy",
            title,
            Status::Fail,
            format!(
                "roles that administer or may export or reveal data sign in without a second factor: {} ([mfa] required_roles)",
                missing.join(", ")
            ),
        );
    }
    if !codes.is_empty() {
        return check(
            "mfa_policy",
            title,
            Status::Warn,
            format!(
                "administrators may use one-time codes by e-mail or SMS, the weakest factor: {} ([mfa] code_roles)",
                codes.join(", ")
            ),
        );
    }
    check(
        "mfa_policy",
        title,
        Status::Pass,
        format!(
            "every administrator role and every role that may export or reveal data must use a second factor ({} roles)",
            must.len()
        ),
    )
}

/// The lock on repeated sign-in failures (等保 2.0: 登录失败处理).
pub fn sign_in_lockout(login: &crate::identity::LoginPolicy) -> Check {
    let title = "登录失败处理 / sign-in lockout";
    let (status, summary) = match login.lock_after {
        n if n <= 0 => (
            Status::Fail,
            "account lockout is off ([login] lock_after = 0): passwords may be guessed without end"
                .to_owned(),
        ),
        n if n > 10 => (
            Status::Warn,
            format!("an account locks only after {n} failures ([login] lock_after; 10 or fewer)"),
        ),
        n => (
            Status::Pass,
            format!(
                "an account locks after {n} failures, first for {} minutes",
                login.lock_minutes
            ),
        ),
    };
    check("sign_in_lockout", title, status, summary)
}

/// How long a signed-in session lasts unattended and at most (等保 2.0: 会话超时).
pub fn session_timeouts(idle_ms: i64, absolute_ms: i64) -> Check {
    let title = "会话超时 / session timeouts";
    let (idle, absolute) = (idle_ms / 60_000, absolute_ms / 3_600_000);
    let status = if idle > 30 || absolute > 12 {
        Status::Warn
    } else {
        Status::Pass
    };
    let advice = if status == Status::Warn {
        " (at most 30 minutes idle and 12 hours in all: session_idle_minutes, session_absolute_hours)"
    } else {
        ""
    };
    check(
        "session_timeouts",
        title,
        status,
        format!("a session ends after {idle} minutes idle and {absolute} hours in all{advice}"),
    )
}

/// Whether administrators may work only from the addresses named for them.
pub fn admin_networks(network: &zf_policy::NetworkPolicy) -> Check {
    let title = "管理地址限制 / administrators' addresses";
    let open: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|r| r.is_administrator() && !network.allow.contains_key(r))
        .map(Role::as_str)
        .collect();
    if open.is_empty() {
        check(
            "admin_networks",
            title,
            Status::Pass,
            "every administrator role may sign in only from the networks named for it",
        )
    } else {
        check(
            "admin_networks",
            title,
            Status::Warn,
            format!(
                "these administrator roles may sign in from any address: {} (name the office or VPN networks in [network.allow])",
                open.join(", ")
            ),
        )
    }
}

/// How long an API token may live (`[api_tokens] max_days`).
pub fn api_token_lifetime(max_days: u32) -> Check {
    let title = "API 令牌期限 / API token lifetimes";
    if max_days > 90 {
        check(
            "api_tokens",
            title,
            Status::Warn,
            format!(
                "API tokens may live {max_days} days: a leaked one works that long ([api_tokens] max_days; 90 or fewer)"
            ),
        )
    } else {
        check(
            "api_tokens",
            title,
            Status::Pass,
            format!("API tokens live at most {max_days} days"),
        )
    }
}

/// Requests to erase a client still waiting for the second person's decision.
pub fn erasure_requests(pending_since: &[i64], now: i64) -> Check {
    const DUE_DAYS: i64 = 15;
    let title = "删除请求处理 / erasure requests";
    let Some(oldest) = pending_since.iter().min().map(|t| days(now - t)) else {
        return check(
            "erasure_requests",
            title,
            Status::Pass,
            "no erasure request is waiting",
        );
    };
    let n = pending_since.len();
    if oldest > DUE_DAYS {
        check(
            "erasure_requests",
            title,
            Status::Warn,
            format!(
                "{n} erasure requests wait for a decision, the oldest for {oldest} days: personal data kept past its purpose must be erased promptly (PIPL art. 47); decide them at /erasures"
            ),
        )
    } else {
        check(
            "erasure_requests",
            title,
            Status::Pass,
            format!("{n} erasure requests wait for a decision, the oldest for {oldest} days"),
        )
    }
}

/// A backup schedule and its latest runs.
fn backups(
    scheduled: bool,
    latest: Option<&zf_store::BackupRun>,
    last_ok: Option<i64>,
    now: i64,
) -> Check {
    let title = "定期备份 / scheduled backups";
    if !scheduled {
        return check(
            "backups",
            title,
            Status::Fail,
            "no scheduled backups: set [backup] enabled with a directory or an S3 target",
        );
    }
    if let Some(run) = latest.filter(|r| r.outcome != "success") {
        return check(
            "backups",
            title,
            Status::Fail,
            format!(
                "the latest backup, started {}, failed: {}",
                date(run.started_at_ms),
                run.error.as_deref().unwrap_or("no reason recorded")
            ),
        );
    }
    match last_ok {
        None => check(
            "backups",
            title,
            Status::Fail,
            "no backup has succeeded yet",
        ),
        Some(t) if now - t > BACKUP_STALE_MS => check(
            "backups",
            title,
            Status::Fail,
            format!(
                "the last successful backup is {} hours old: scheduled runs are not happening",
                (now - t) / HOUR_MS
            ),
        ),
        Some(t) => check(
            "backups",
            title,
            Status::Pass,
            format!(
                "the last backup succeeded {} hours ago",
                (now - t) / HOUR_MS
            ),
        ),
    }
}

fn due(
    id: &str,
    title: &str,
    what: &str,
    last: Option<i64>,
    every: u32,
    late: Status,
    now: i64,
) -> Check {
    let overdue = crate::backup::overdue(now, last, every.max(1));
    let summary = match last {
        None => format!("no {what} has succeeded yet; one is due every {every} days"),
        Some(t) => format!(
            "the last successful {what} was on {}; one is due every {every} days",
            date(t)
        ),
    };
    check(
        id,
        title,
        if overdue { late } else { Status::Pass },
        summary,
    )
}

impl App {
    /// The deployment as the binary described it.
    pub fn with_deployment(mut self, deployment: Deployment) -> Self {
        self.deployment = std::sync::Arc::new(deployment);
        self
    }

    /// Every check, against the application's clock.
    pub async fn posture(&self) -> Result<Posture, AppError> {
        let now = self.now_ms();
        let mut checks = Vec::new();
        checks.push(self.kek_age_check(now).await?);
        checks.extend(key_custody(&self.deployment.key_provider));
        if let Some(link) = self.store.database_link().await? {
            checks.push(database_link(&link));
        }
        checks.push(self.data_keys_check(now).await?);
        checks.push(mfa_policy(&self.config.mfa));
        checks.push(self.mfa_enrolment_check().await?);
        checks.push(sign_in_lockout(&self.config.login));
        checks.push(session_timeouts(
            self.config.session_idle_timeout_ms,
            self.config.session_absolute_timeout_ms,
        ));
        checks.push(admin_networks(&self.config.network));
        checks.push(api_token_lifetime(self.config.api_tokens.max_days));
        let pending: Vec<i64> = self
            .store
            .erasures(
                zf_policy::Scope::All,
                Some(zf_store::ErasureStatus::Pending),
            )
            .await?
            .iter()
            .map(|e| e.requested_at_ms)
            .collect();
        checks.push(erasure_requests(&pending, now));
        checks.extend(self.backup_checks(now).await?);
        checks.push(self.access_review_check(now).await?);
        checks.push(self.audit_chain_check().await?);
        checks.push(self.alerts_check(now).await?);
        checks.push(self.forwarding_check());
        if let Some(c) = &self.deployment.certificate {
            checks.push(tls_certificate(c, now));
        }
        checks.push(self.dormant_check());
        Ok(Posture::of(now, checks))
    }

    /// [`App::posture`] for the signed-in security administrator; audited, since a record of
    /// who checked the posture and what it said is evidence of the firm's own review.
    pub async fn posture_by(&self, grant: &Grant, meta: &RequestMeta) -> Result<Posture, AppError> {
        let posture = self.posture().await?;
        let event = AuditEvent::new(
            crate::now_ms(),
            crate::actor(grant, meta),
            AuditAction::SecurityPostureChecked,
            Outcome::Success,
        )
        .request(meta.request_id.clone())
        .detail(summary(&posture));
        self.store.audit_append(event).await?;
        Ok(posture)
    }

    /// Runs the checks and raises one alert a day for each that fails (the monitoring loop
    /// calls this every hour). Returns the alerts this call raised.
    pub async fn posture_alerts(&self) -> Result<Vec<zf_audit::Alert>, AppError> {
        let posture = self.posture().await?;
        let day = posture.checked_at.div_euclid(DAY_MS);
        let mut raised = Vec::new();
        for c in posture.checks.iter().filter(|c| c.status == Status::Fail) {
            let finding = Finding {
                rule: POSTURE_RULE,
                severity: Severity::High,
                dedup_key: format!("posture:{}:{day}", c.id),
                username: None,
                user_id: None,
                source: None,
                summary: format!(
                    "安全态势检查未通过 / posture check {} failed: {}",
                    c.id, c.summary
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

    async fn kek_age_check(&self, now: i64) -> Result<Check, AppError> {
        let current = self.keys.current_kek_version();
        let created = self
            .store
            .kek_versions()
            .await?
            .into_iter()
            .find(|r| r.version == current)
            .map_or(now, |r| r.created_at_ms);
        Ok(kek_age(
            current.0,
            days(now - created),
            i64::from(self.config.kek_max_age_days),
        ))
    }

    async fn data_keys_check(&self, now: i64) -> Result<Check, AppError> {
        let title = "数据密钥 / data keys";
        let limit = self.config.data_keys.max_encryptions;
        let mut worn = 0;
        for holder in KeyHolder::ALL {
            worn += self
                .store
                .key_holders(holder, HolderFilter::Worn(limit), 1_000)
                .await?
                .len();
        }
        let job = self.store.key_job_latest().await?;
        if let Some(j) = job
            .as_ref()
            .filter(|j| j.state == KeyJobState::Running && now - j.updated_at_ms > STALLED_MS)
        {
            return Ok(check(
                "data_keys",
                title,
                Status::Warn,
                format!(
                    "the {} job started by {} has made no progress for {} minutes (phase {}): data stays under two keys until it finishes; run `zhangfang keys rotate --{}` to carry it on",
                    j.kind.as_str(),
                    j.started_by,
                    (now - j.updated_at_ms) / 60_000,
                    j.phase,
                    if j.kind.as_str() == "reencrypt" { "reencrypt" } else { "blind-index" },
                ),
            ));
        }
        if worn > 0 {
            return Ok(check(
                "data_keys",
                title,
                Status::Warn,
                format!(
                    "{worn} data keys have sealed {limit} or more values and are still in use: the monitoring loop replaces them once a minute, so servers may not be running"
                ),
            ));
        }
        Ok(check(
            "data_keys",
            title,
            Status::Pass,
            format!("no data key has reached its limit of {limit} values; no key job is stalled"),
        ))
    }

    async fn mfa_enrolment_check(&self) -> Result<Check, AppError> {
        let title = "双因素登记 / second factors enrolled";
        let users = self.store.users_enabled().await?;
        let must: Vec<_> = users
            .iter()
            .filter(|u| self.config.mfa.requires(u.role))
            .collect();
        let missing: Vec<String> = must
            .iter()
            .filter(|u| !self.second_factor_enrolled(u))
            .map(|u| u.username.as_str().to_owned())
            .collect();
        Ok(if missing.is_empty() {
            check(
                "mfa_enrolment",
                title,
                Status::Pass,
                match must.len() {
                    0 => "no enabled user holds a role that requires a second factor".to_owned(),
                    n => format!("all {n} users who must use a second factor have one"),
                },
            )
        } else {
            check(
                "mfa_enrolment",
                title,
                Status::Warn,
                format!(
                    "{} of {} users who must use a second factor have none yet ({}): whoever signs in first with their password enrols it",
                    missing.len(),
                    must.len(),
                    some_of(&missing)
                ),
            )
        })
    }

    async fn backup_checks(&self, now: i64) -> Result<Vec<Check>, AppError> {
        let c = &self.config.backup;
        let runs = self.store.backup_runs(None, 200).await?;
        let last_ok = |kind: &str| {
            runs.iter()
                .find(|r| r.kind == kind && r.outcome == "success")
                .map(|r| r.started_at_ms)
        };
        let latest = runs.iter().find(|r| r.kind == "backup");
        Ok(vec![
            backups(c.enabled && c.has_target(), latest, last_ok("backup"), now),
            due(
                "restore_tests",
                "恢复测试 / restore tests",
                "restore test",
                last_ok("restore_test"),
                c.restore_test_every_days,
                Status::Fail,
                now,
            ),
            due(
                "drills",
                "灾备演练 / recovery drills",
                "drill",
                last_ok("drill"),
                c.drill_every_days,
                Status::Warn,
                now,
            ),
        ])
    }

    async fn access_review_check(&self, now: i64) -> Result<Check, AppError> {
        let title = "权限复核 / access reviews";
        let every = self.config.monitor.access_review_every_days;
        let campaigns = self.store.review_campaigns().await?;
        let overdue: Vec<String> = self
            .reviews_overdue(&campaigns, now)
            .await?
            .into_iter()
            .map(|(c, open)| format!("{} ({open} lines, due {})", c.id, date(c.due_at_ms)))
            .collect();
        if !overdue.is_empty() {
            return Ok(check(
                "access_reviews",
                title,
                Status::Fail,
                format!(
                    "access reviews past their due date with lines unanswered: {}",
                    some_of(&overdue)
                ),
            ));
        }
        if every == 0 {
            return Ok(check(
                "access_reviews",
                title,
                Status::Warn,
                "periodic access reviews are off ([monitor] access_review_every_days = 0)",
            ));
        }
        let latest = campaigns.iter().map(|c| c.created_at_ms).max();
        Ok(check(
            "access_reviews",
            title,
            Status::Pass,
            match latest {
                None => format!(
                    "a review starts every {every} days; none has yet (a serving node starts the first within the hour)"
                ),
                Some(t) => format!(
                    "a review starts every {every} days; the latest started on {}",
                    date(t)
                ),
            },
        ))
    }

    async fn audit_chain_check(&self) -> Result<Check, AppError> {
        let title = "审计日志完整性 / audit chain";
        let report = self.audit_verify(&[]).await?;
        Ok(match report.findings.first() {
            None => check(
                "audit_chain",
                title,
                Status::Pass,
                format!(
                    "{} events verified, every link and checkpoint intact through event #{}",
                    report.events, report.last_seq
                ),
            ),
            Some(first) => check(
                "audit_chain",
                title,
                Status::Fail,
                format!(
                    "{} problems in {} events; the first: {first}",
                    report.findings.len(),
                    report.events
                ),
            ),
        })
    }

    async fn alerts_check(&self, now: i64) -> Result<Check, AppError> {
        let title = "告警处置 / alerts dealt with";
        // The posture's own alerts restate other checks; counted here they would keep this
        // check failing on their account.
        let open: Vec<_> = self
            .store
            .alerts(Some(AlertStatus::Open), 500)
            .await?
            .into_iter()
            .filter(|a| a.alert.rule != POSTURE_RULE)
            .collect();
        let serious: Vec<_> = open
            .iter()
            .filter(|a| a.alert.severity >= Severity::High)
            .collect();
        let oldest = |list: &[&zf_audit::AlertRecord]| {
            list.iter()
                .map(|a| a.alert.at_ms)
                .min()
                .map_or(0, |t| (now - t) / HOUR_MS)
        };
        Ok(if !serious.is_empty() {
            check(
                "alerts",
                title,
                Status::Fail,
                format!(
                    "{} high or critical alerts are open, the oldest for {} hours",
                    serious.len(),
                    oldest(&serious)
                ),
            )
        } else if !open.is_empty() {
            let all: Vec<_> = open.iter().collect();
            check(
                "alerts",
                title,
                Status::Warn,
                format!(
                    "{} alerts are open, the oldest for {} hours",
                    open.len(),
                    oldest(&all)
                ),
            )
        } else {
            check("alerts", title, Status::Pass, "no alert is open")
        })
    }

    fn forwarding_check(&self) -> Check {
        let title = "日志外送 / log forwarding";
        let to = &self.deployment.forwarding;
        if to.is_empty() {
            check(
                "log_forwarding",
                title,
                Status::Warn,
                "audit events and alerts stay on this server: forward them to a log server ([siem] syslog) \
                 so a compromised server cannot hide them (等保 2.0 centralised audit)",
            )
        } else {
            check(
                "log_forwarding",
                title,
                Status::Pass,
                format!("audit events and alerts go to {}", to.join(", ")),
            )
        }
    }

    fn dormant_check(&self) -> Check {
        let title = "闲置账号 / dormant accounts";
        match self.config.monitor.dormant_days {
            0 => check(
                "dormant_accounts",
                title,
                Status::Warn,
                "accounts nobody uses stay enabled ([monitor] dormant_days = 0)",
            ),
            d => check(
                "dormant_accounts",
                title,
                Status::Pass,
                format!("accounts unused for {d} days are disabled"),
            ),
        }
    }
}

/// One line for the audit log and the CLI: the verdict and the checks that did not pass.
pub fn summary(p: &Posture) -> String {
    let mut text = format!(
        "{}: {} checks, {} failed, {} warnings",
        p.status.as_str(),
        p.checks.len(),
        p.failed,
        p.warnings
    );
    let not_passed: Vec<String> = p
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {}", c.id, c.status.as_str()))
        .collect();
    if !not_passed.is_empty() {
        text.push_str(" (");
        text.push_str(&not_passed.join(", "));
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kek_passes_then_warns_then_fails_with_age() {
        assert_eq!(kek_age(1, 0, 365).status, Status::Pass);
        assert_eq!(kek_age(1, 335, 365).status, Status::Pass);
        assert_eq!(kek_age(1, 336, 365).status, Status::Warn);
        assert_eq!(kek_age(1, 365, 365).status, Status::Warn);
        let late = kek_age(3, 366, 365);
        assert_eq!(late.status, Status::Fail);
        assert!(
            late.summary.contains("v3 is 366 days old"),
            "{}",
            late.summary
        );
        // A short policy warns in its second half rather than from the first day.
        assert_eq!(kek_age(1, 10, 30).status, Status::Pass);
        assert_eq!(kek_age(1, 16, 30).status, Status::Warn);
    }

    #[test]
    fn a_certificate_is_judged_by_expiry_then_by_its_issuer() {
        let now = 1_800_000_000_000;
        let cert = |in_days: i64, self_signed| Certificate {
            subject: "crm.example.cn".into(),
            not_after_ms: now + in_days * DAY_MS,
            self_signed,
        };
        assert_eq!(tls_certificate(&cert(200, false), now).status, Status::Pass);
        assert_eq!(tls_certificate(&cert(200, true), now).status, Status::Warn);
        let soon = tls_certificate(&cert(10, false), now);
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.summary.contains("in 10 days"), "{}", soon.summary);
        assert_eq!(tls_certificate(&cert(0, false), now).status, Status::Fail);
        assert_eq!(tls_certificate(&cert(-3, true), now).status, Status::Fail);
    }

    #[test]
    fn the_mfa_policy_fails_when_an_administrator_role_is_left_out() {
        let default = zf_policy::MfaPolicy::default();
        assert_eq!(mfa_policy(&default).status, Status::Pass);
        let mut weak = default.clone();
        weak.required_roles.retain(|r| *r != Role::SecurityAdmin);
        let c = mfa_policy(&weak);
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("security_admin"), "{}", c.summary);
        let mut codes = default;
        codes.code_roles.push(Role::SystemAdmin);
        assert_eq!(mfa_policy(&codes).status, Status::Warn);
    }

    #[test]
    fn custody_by_file_warns_and_an_unknown_provider_is_not_judged() {
        assert_eq!(key_custody("file").map(|c| c.status), Some(Status::Warn));
        assert_eq!(key_custody("pkcs11").map(|c| c.status), Some(Status::Pass));
        assert!(key_custody("").is_none());
    }

    #[test]
    fn a_database_across_the_network_must_be_reached_over_verified_tls() {
        let link = |tls: Option<&str>, verified, local| zf_store::DatabaseLink {
            server: "db.example.cn:5432".into(),
            local,
            tls: tls.map(str::to_owned),
            verified,
        };
        let tls = Some("TLSv1.3 TLS_AES_256_GCM_SHA384");
        assert_eq!(database_link(&link(tls, true, false)).status, Status::Pass);
        assert_eq!(database_link(&link(None, false, true)).status, Status::Pass);
        let clear = database_link(&link(None, false, false));
        assert_eq!(clear.status, Status::Fail);
        assert!(clear.summary.contains("in the clear"), "{}", clear.summary);
        assert_eq!(database_link(&link(tls, false, false)).status, Status::Warn);
    }

    #[test]
    fn access_controls_are_judged_against_what_an_assessor_asks() {
        let mut login = crate::identity::LoginPolicy::default();
        assert_eq!(sign_in_lockout(&login).status, Status::Pass);
        login.lock_after = 0;
        assert_eq!(sign_in_lockout(&login).status, Status::Fail);
        login.lock_after = 20;
        assert_eq!(sign_in_lockout(&login).status, Status::Warn);

        let (minute, hour) = (60_000, 3_600_000);
        assert_eq!(
            session_timeouts(30 * minute, 12 * hour).status,
            Status::Pass
        );
        assert_eq!(
            session_timeouts(31 * minute, 12 * hour).status,
            Status::Warn
        );
        assert_eq!(
            session_timeouts(15 * minute, 24 * hour).status,
            Status::Warn
        );

        let mut network = zf_policy::NetworkPolicy::default();
        let open = admin_networks(&network);
        assert_eq!(open.status, Status::Warn);
        assert!(open.summary.contains("security_admin"), "{}", open.summary);
        for role in Role::ALL.into_iter().filter(|r| r.is_administrator()) {
            network
                .allow
                .insert(role, vec!["10.8.0.0/16".parse().unwrap()]);
        }
        assert_eq!(admin_networks(&network).status, Status::Pass);
    }

    #[test]
    fn long_lived_tokens_and_waiting_erasures_are_flagged() {
        assert_eq!(api_token_lifetime(90).status, Status::Pass);
        assert_eq!(api_token_lifetime(365).status, Status::Warn);
        let now = 1_800_000_000_000;
        assert_eq!(erasure_requests(&[], now).status, Status::Pass);
        let fresh = erasure_requests(&[now - DAY_MS, now - 3 * DAY_MS], now);
        assert_eq!(fresh.status, Status::Pass);
        assert!(
            fresh.summary.contains("the oldest for 3 days"),
            "{}",
            fresh.summary
        );
        let late = erasure_requests(&[now - DAY_MS, now - 16 * DAY_MS], now);
        assert_eq!(late.status, Status::Warn);
        assert!(
            late.summary.starts_with("2 erasure requests"),
            "{}",
            late.summary
        );
    }

    #[test]
    fn a_failed_or_missing_backup_fails_the_check() {
        let now = 1_800_000_000_000;
        let run = |outcome: &str, at: i64| zf_store::BackupRun {
            id: "r".into(),
            kind: "backup".into(),
            trigger: "schedule".into(),
            started_at_ms: at,
            finished_at_ms: at,
            outcome: outcome.into(),
            backup_id: None,
            backup_created_at_ms: None,
            bytes: None,
            target: None,
            error: Some("disk full".into()),
            detail: None,
        };
        assert_eq!(backups(false, None, None, now).status, Status::Fail);
        assert_eq!(backups(true, None, None, now).status, Status::Fail);
        let failed = run("failed", now - HOUR_MS);
        let c = backups(true, Some(&failed), Some(now - DAY_MS), now);
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("disk full"), "{}", c.summary);
        let ok = run("success", now - HOUR_MS);
        assert_eq!(
            backups(true, Some(&ok), Some(now - HOUR_MS), now).status,
            Status::Pass
        );
        let old = run("success", now - 3 * DAY_MS);
        assert_eq!(
            backups(true, Some(&old), Some(now - 3 * DAY_MS), now).status,
            Status::Fail
        );
    }
}
